//! payment-ms configuration: read once from the environment at start, validated, typed.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

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
}

/// The only provider this build has; Stripe arrives with its own issue.
pub const KNOWN_PROVIDERS: &[&str] = &["mock"];

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
        let database_url = env.string("DATABASE_URL", "sqlite://payments.db?mode=rwc");
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            return Err(ConfigError::invalid(
                "DATABASE_URL",
                "must start with sqlite: or postgres://",
            ));
        }
        Ok(Config {
            profile,
            addr: env.parse("PAYMENT_MS_ADDR", "127.0.0.1:8081")?,
            database_url: SecretString::from(database_url),
            database_max_connections: env.parse("DATABASE_MAX_CONNECTIONS", "10")?,
            public_base_url: env.url("PUBLIC_BASE_URL", "http://127.0.0.1:8081")?,
            internal_token,
            payment_provider,
            payment_ttl: env.duration("PAYMENT_TTL", "30m")?,
            order_ttl: env.duration("ORDER_TTL", "24h")?,
            idempotency_ttl: env.duration("IDEMPOTENCY_TTL", "24h")?,
            sweep_interval: env.duration("EXPIRY_SWEEP_INTERVAL", "30s")?,
            request_timeout: env.duration("REQUEST_TIMEOUT", "30s")?,
            body_limit: env.parse("BODY_LIMIT_BYTES", "65536")?,
            log_json: env.log_json(),
        })
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
}
