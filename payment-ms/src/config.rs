//! payment-ms configuration: read once from the environment at start, validated, typed.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use shared::signing::WebhookSecret;
use url::Url;

use crate::accounts::http::AccountsConfig;
use crate::billing::BillingConfig;
use crate::platform::nats::NatsConfig;
use crate::providers::stripe::{Mode, StripeConfig};

use shared::config::{ConfigError, Env, Profile};

#[derive(Debug, Clone)]
pub struct Config {
    pub profile: Profile,
    /// `PAYMENT_MS_ADDR`; port 0 picks a free port (tests).
    pub addr: SocketAddr,
    /// `DATABASE_URL`: may hold a password, so it is a secret.
    pub database_url: SecretString,
    /// `DATABASE_MAX_CONNECTIONS`: the pool bound.
    pub database_max_connections: u32,
    /// `PUBLIC_BASE_URL`: where browsers reach the mock provider's hosted page.
    pub public_base_url: Url,
    /// `INTERNAL_TOKEN`: what the gateway presents on every `/internal` call.
    pub internal_token: SecretString,
    /// `PAYMENT_PROVIDER`: the provider used when a checkout names none.
    pub payment_provider: String,
    /// `PAYMENT_TTL`: how long a pending payment waits for the buyer.
    pub payment_ttl: Duration,
    /// `INVENTORY_HOLD`: how long a checkout holds the stock of its order's tracked lines (its
    /// checkout then lasts no longer).
    pub inventory_hold: Duration,
    /// `ORDER_TTL`: how long a pending order waits to be paid.
    pub order_ttl: Duration,
    /// `IDEMPOTENCY_TTL`: how long a stored response is replayed for a key.
    pub idempotency_ttl: Duration,
    /// `EXPIRY_SWEEP_INTERVAL`: how often due payments and orders are expired.
    pub sweep_interval: Duration,
    /// `REQUEST_TIMEOUT`: the bound on handling one request.
    pub request_timeout: Duration,
    /// `BODY_LIMIT_BYTES`: the largest request body accepted.
    pub body_limit: usize,
    /// `LOG_FORMAT=json` for one JSON object per line.
    pub log_json: bool,
    /// `SHUTDOWN_TIMEOUT`: how long in-flight requests may finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// `HEADER_READ_TIMEOUT`: a connection that sends no whole request head within this is
    /// closed (idle kept-alive connections too).
    pub header_read_timeout: Duration,
    pub webhooks: WebhookConfig,
    /// `MOCK_PROVIDER_ENABLED`: whether buyers may use the mock provider (no money moves). On
    /// in the dev profile and when it is the default provider; off otherwise, so a production
    /// buyer cannot pick it.
    pub mock_enabled: bool,
    /// Set when Stripe is configured.
    pub stripe: Option<StripeConfig>,
    /// Set when `NATS_URL` is: events are relayed to JetStream and read from other services'
    /// streams.
    pub nats: Option<NatsConfig>,
    /// Set when `ACCOUNTS_URL` is: the account service is asked whether a user exists.
    pub accounts: Option<AccountsConfig>,
    /// Set when `INVENTORY_URL` is: checkouts hold stock at an external inventory service,
    /// each through a saga (`crate::saga`), instead of in the built-in tables.
    pub external_inventory: Option<crate::saga::external::ExternalConfig>,
    /// Billing's jobs, dunning, invoice numbers and test clocks.
    pub billing: BillingConfig,
}

/// Partner webhooks: the delivery worker and the SSRF guard.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `WEBHOOK_ENABLED`: whether this replica runs the delivery worker.
    pub enabled: bool,
    /// `WEBHOOK_ALLOWED_CIDRS`: non-public networks partner URLs may still point into.
    pub allowed_cidrs: Vec<IpNet>,
    /// `WEBHOOK_RETRY_SCHEDULE`: the delays before each retry after the first attempt.
    pub retry_schedule: Vec<Duration>,
    /// `WEBHOOK_JITTER_PERCENT`: each delay is moved by up to this share, either way.
    pub jitter_percent: u32,
    /// `WEBHOOK_TIMEOUT`: the bound on one attempt.
    pub timeout: Duration,
    /// `WEBHOOK_DISABLE_AFTER`: events in a row that exhaust the schedule before the partner
    /// is disabled.
    pub disable_after: u32,
    /// `WEBHOOK_SECRET_GRACE`: how long a rotated-out secret still signs.
    pub secret_grace: Duration,
    /// `WEBHOOK_POLL_INTERVAL`: how often the worker looks for due retries and other
    /// replicas' events (events of this replica wake it at once).
    pub poll_interval: Duration,
    /// `WEBHOOK_CONCURRENCY`: requests in flight at most.
    pub concurrency: usize,
    /// `WEBHOOK_PARTNER_CONCURRENCY`: requests in flight to one partner at most (per replica),
    /// so a slow partner cannot take every sending slot.
    pub partner_concurrency: usize,
    /// `WEBHOOK_PARTNER_BACKOFF_AFTER`: attempts in a row without an answer (or answered 5xx
    /// or 429) after which a partner is backed off.
    pub partner_backoff_after: u32,
    /// `WEBHOOK_PARTNER_BACKOFF`: the first back-off; each further failed attempt doubles it.
    pub partner_backoff: Duration,
    /// `WEBHOOK_PARTNER_BACKOFF_MAX`: the longest back-off.
    pub partner_backoff_max: Duration,
    /// `WEBHOOK_MAX_PARTNERS`: how many partners may be registered.
    pub max_partners: u64,
    /// `N8N_WEBHOOK_URL` and `N8N_WEBHOOK_SECRET`: a built-in partner receiving every event.
    pub n8n: Option<N8nHook>,
}

/// The longest a rotated-out secret may keep signing.
pub const MAX_SECRET_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone)]
pub struct N8nHook {
    pub url: Url,
    pub secret: SecretString,
}

impl WebhookConfig {
    pub fn from_source(env: &Env, profile: Profile) -> Result<WebhookConfig, ConfigError> {
        let default_cidrs = match profile {
            Profile::Dev => "127.0.0.0/8,::1/128",
            Profile::Prod => "",
        };
        let allowed_cidrs = env
            .string("WEBHOOK_ALLOWED_CIDRS", default_cidrs)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>().map_err(|e| {
                    ConfigError::invalid("WEBHOOK_ALLOWED_CIDRS", format!("`{s}`: {e}"))
                })
            })
            .collect::<Result<_, _>>()?;
        let n8n = match env.get("N8N_WEBHOOK_URL") {
            None => None,
            Some(_) => {
                let url = env.url("N8N_WEBHOOK_URL", "")?;
                let secret = env
                    .secret("N8N_WEBHOOK_SECRET")
                    .ok_or(ConfigError::invalid(
                        "N8N_WEBHOOK_SECRET",
                        "is required when N8N_WEBHOOK_URL is set",
                    ))?;
                WebhookSecret::parse(secret.expose_secret())
                    .map_err(|e| ConfigError::invalid("N8N_WEBHOOK_SECRET", e))?;
                Some(N8nHook { url, secret })
            }
        };
        let jitter_percent: u32 = env.parse("WEBHOOK_JITTER_PERCENT", "10")?;
        if jitter_percent > 100 {
            return Err(ConfigError::invalid(
                "WEBHOOK_JITTER_PERCENT",
                "must be 0 to 100",
            ));
        }
        let concurrency: usize = env.parse("WEBHOOK_CONCURRENCY", "128")?;
        if concurrency == 0 {
            return Err(ConfigError::invalid(
                "WEBHOOK_CONCURRENCY",
                "must be at least 1",
            ));
        }
        let partner_concurrency: usize = env.parse("WEBHOOK_PARTNER_CONCURRENCY", "32")?;
        if partner_concurrency == 0 {
            return Err(ConfigError::invalid(
                "WEBHOOK_PARTNER_CONCURRENCY",
                "must be at least 1",
            ));
        }
        let secret_grace = env.duration("WEBHOOK_SECRET_GRACE", "24h")?;
        if secret_grace > MAX_SECRET_GRACE {
            return Err(ConfigError::invalid(
                "WEBHOOK_SECRET_GRACE",
                "must be at most 7 days",
            ));
        }
        Ok(WebhookConfig {
            enabled: env.parse("WEBHOOK_ENABLED", "true")?,
            allowed_cidrs,
            retry_schedule: env
                .durations("WEBHOOK_RETRY_SCHEDULE", "5s,5m,30m,2h,5h,10h,14h,20h,24h")?,
            jitter_percent,
            timeout: env.duration("WEBHOOK_TIMEOUT", "10s")?,
            disable_after: env.parse("WEBHOOK_DISABLE_AFTER", "5")?,
            secret_grace,
            poll_interval: env.duration("WEBHOOK_POLL_INTERVAL", "1s")?,
            partner_concurrency: partner_concurrency.min(concurrency),
            concurrency,
            partner_backoff_after: env.parse("WEBHOOK_PARTNER_BACKOFF_AFTER", "5")?,
            partner_backoff: env.duration("WEBHOOK_PARTNER_BACKOFF", "5s")?,
            partner_backoff_max: env.duration("WEBHOOK_PARTNER_BACKOFF_MAX", "10m")?,
            max_partners: env.parse("WEBHOOK_MAX_PARTNERS", "1000")?,
            n8n,
        })
    }
}

pub use shared::api::PROVIDERS as KNOWN_PROVIDERS;

/// Stripe is on when it is the default provider or a secret key is set.
fn stripe_config(env: &Env, default_provider: &str) -> Result<Option<StripeConfig>, ConfigError> {
    let key = env.secret("STRIPE_SECRET_KEY");
    if key.is_none() && default_provider != "stripe" {
        return Ok(None);
    }
    let secret_key = key.ok_or(ConfigError::invalid(
        "STRIPE_SECRET_KEY",
        "is required when PAYMENT_PROVIDER=stripe",
    ))?;
    let exposed = secret_key.expose_secret();
    if !(exposed.starts_with("sk_") || exposed.starts_with("rk_")) {
        return Err(ConfigError::invalid(
            "STRIPE_SECRET_KEY",
            "must be a secret or restricted key (sk_… or rk_…)",
        ));
    }
    let webhook_secret = env.secret("STRIPE_WEBHOOK_SECRET");
    if webhook_secret
        .as_ref()
        .is_some_and(|s| !s.expose_secret().starts_with("whsec_"))
    {
        return Err(ConfigError::invalid(
            "STRIPE_WEBHOOK_SECRET",
            "must be the endpoint's signing secret (whsec_…)",
        ));
    }
    let mode = env.string("STRIPE_MODE", "checkout");
    let mode = Mode::parse(&mode).ok_or(ConfigError::invalid(
        "STRIPE_MODE",
        "must be checkout or payment_intents",
    ))?;
    Ok(Some(StripeConfig {
        secret_key,
        api_base: env.url("STRIPE_API_BASE", "https://api.stripe.com")?,
        webhook_secret,
        mode,
        timeout: env.duration("STRIPE_TIMEOUT", "10s")?,
        webhook_tolerance: env.duration("STRIPE_WEBHOOK_TOLERANCE", "300s")?,
    }))
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_source(&Env::process())
    }

    pub fn from_source(env: &Env) -> Result<Config, ConfigError> {
        let profile = env.profile()?;
        let internal_token = env.internal_token(profile)?;
        let payment_provider = env.string("PAYMENT_PROVIDER", "mock");
        if !KNOWN_PROVIDERS.contains(&payment_provider.as_str()) {
            return Err(ConfigError::invalid(
                "PAYMENT_PROVIDER",
                format!("must be one of {}", KNOWN_PROVIDERS.join(", ")),
            ));
        }
        // The mock provider takes no money: on by default only in the dev profile; in prod
        // it must be asked for by name, twice.
        let mock_enabled: bool = env.parse(
            "MOCK_PROVIDER_ENABLED",
            if profile == Profile::Dev {
                "true"
            } else {
                "false"
            },
        )?;
        let chosen = env.get("PAYMENT_PROVIDER").is_some();
        if payment_provider == "mock" && !mock_enabled && (chosen || profile == Profile::Dev) {
            return Err(match profile {
                Profile::Prod => ConfigError::invalid(
                    "PAYMENT_PROVIDER",
                    "mock moves no money; in the prod profile it needs MOCK_PROVIDER_ENABLED=true as well",
                ),
                Profile::Dev => ConfigError::invalid(
                    "MOCK_PROVIDER_ENABLED",
                    "cannot be false while PAYMENT_PROVIDER=mock",
                ),
            });
        }
        let stripe = stripe_config(env, &payment_provider)?;
        let database_url = env.string("DATABASE_URL", "sqlite://payments.db?mode=rwc");
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            return Err(ConfigError::invalid(
                "DATABASE_URL",
                "must start with sqlite: or postgres://",
            ));
        }
        let config = Config {
            profile,
            addr: env.parse("PAYMENT_MS_ADDR", "127.0.0.1:8081")?,
            database_url: SecretString::from(database_url),
            database_max_connections: env.parse("DATABASE_MAX_CONNECTIONS", "10")?,
            public_base_url: env.url("PUBLIC_BASE_URL", "http://127.0.0.1:8081")?,
            internal_token,
            payment_provider,
            payment_ttl: env.duration("PAYMENT_TTL", "30m")?,
            inventory_hold: env.duration("INVENTORY_HOLD", "30m")?,
            order_ttl: env.duration("ORDER_TTL", "24h")?,
            idempotency_ttl: env.duration("IDEMPOTENCY_TTL", "24h")?,
            sweep_interval: env.duration("EXPIRY_SWEEP_INTERVAL", "30s")?,
            request_timeout: env.duration("REQUEST_TIMEOUT", "30s")?,
            body_limit: env.parse("BODY_LIMIT_BYTES", "65536")?,
            log_json: env.log_json(),
            shutdown_timeout: env.duration("SHUTDOWN_TIMEOUT", "20s")?,
            header_read_timeout: env.duration("HEADER_READ_TIMEOUT", "10s")?,
            webhooks: WebhookConfig::from_source(env, profile)?,
            mock_enabled,
            stripe,
            nats: NatsConfig::from_source(env)?,
            accounts: AccountsConfig::from_source(env)?,
            external_inventory: crate::saga::external::ExternalConfig::from_source(env)?,
            billing: BillingConfig::from_source(env, profile)?,
        };
        // Checked last, so a malformed setting is named first.
        if profile == Profile::Prod && env.get("PAYMENT_PROVIDER").is_none() {
            return Err(ConfigError::Required {
                name: "PAYMENT_PROVIDER",
                hint: "stripe (with STRIPE_SECRET_KEY), or mock with MOCK_PROVIDER_ENABLED=true \
                       to take no real money",
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prod_needs_an_internal_token() {
        let env = Env::from_pairs([("APP_PROFILE", "prod")]);
        let err = Config::from_source(&env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "INTERNAL_TOKEN is required in the prod profile"
        );
    }

    #[test]
    fn dev_runs_on_defaults() {
        let env = Env::from_pairs([("APP_PROFILE", "dev")]);
        let config = Config::from_source(&env).unwrap();
        assert_eq!(config.payment_provider, "mock");
        assert_eq!(config.payment_ttl, Duration::from_secs(30 * 60));
    }

    #[test]
    fn malformed_values_name_their_variable() {
        let env = Env::from_pairs([("APP_PROFILE", "dev"), ("PAYMENT_TTL", "soon")]);
        let err = Config::from_source(&env).unwrap_err().to_string();
        assert!(err.starts_with("PAYMENT_TTL is invalid"), "{err}");
        let env = Env::from_pairs([("APP_PROFILE", "dev"), ("PAYMENT_PROVIDER", "paypal")]);
        let err = Config::from_source(&env).unwrap_err().to_string();
        assert!(err.starts_with("PAYMENT_PROVIDER is invalid"), "{err}");
    }

    #[test]
    fn stripe_needs_a_secret_key_of_the_right_kind() {
        let env = Env::from_pairs([("APP_PROFILE", "dev"), ("PAYMENT_PROVIDER", "stripe")]);
        let err = Config::from_source(&env).unwrap_err().to_string();
        assert!(err.starts_with("STRIPE_SECRET_KEY is invalid"), "{err}");
        let env = Env::from_pairs([
            ("APP_PROFILE", "dev"),
            ("PAYMENT_PROVIDER", "stripe"),
            ("STRIPE_SECRET_KEY", "pk_test_public"),
        ]);
        let err = Config::from_source(&env).unwrap_err().to_string();
        assert!(err.starts_with("STRIPE_SECRET_KEY is invalid"), "{err}");
        assert!(!err.contains("pk_test_public"), "{err}");
        let env = Env::from_pairs([
            ("APP_PROFILE", "dev"),
            ("STRIPE_SECRET_KEY", "sk_test_x"),
            ("STRIPE_MODE", "invoices"),
        ]);
        let err = Config::from_source(&env).unwrap_err().to_string();
        assert!(err.starts_with("STRIPE_MODE is invalid"), "{err}");
    }

    #[test]
    fn the_mock_is_off_in_production_unless_it_is_the_default() {
        let env = Env::from_pairs([
            ("APP_PROFILE", "prod"),
            (
                "INTERNAL_TOKEN",
                "a-long-enough-internal-token-for-prod-use",
            ),
            ("PAYMENT_PROVIDER", "stripe"),
            ("STRIPE_SECRET_KEY", "sk_live_x"),
        ]);
        let config = Config::from_source(&env).unwrap();
        assert!(!config.mock_enabled);
        let stripe = config.stripe.unwrap();
        assert_eq!(stripe.mode, Mode::Checkout);
        assert_eq!(stripe.api_base.as_str(), "https://api.stripe.com/");
        assert!(!format!("{stripe:?}").contains("sk_live_x"));
    }
}
