//! `cargo run -p devstack`: the whole stack in one process on its embedded defaults: SQLite
//! (`payments.db` in the current folder), the mock provider, and secrets generated for this run.
//! It prints the URLs and ready-to-use tokens. Any variable of docs/configuration.md may still
//! be set to override a default.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use shared::config::Env;
use tokio_util::sync::CancellationToken;

const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

#[tokio::main]
async fn main() -> ExitCode {
    let mut env = Env::process();
    env.set_default("APP_PROFILE", "dev");
    // Secrets for this run only, shared by both services, unless given (a key of your identity
    // provider replaces the generated HS256 secret).
    if env.get("JWT_PUBLIC_KEY_PEM").is_none() && env.get("JWT_JWKS_URL").is_none() {
        env.set_default("JWT_HS256_SECRET", &shared::config::random_secret());
    }
    env.set_default("INTERNAL_TOKEN", &shared::config::random_secret());
    shared::telemetry::init(env.log_json());
    match run(env).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "devstack stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(mut env: Env) -> anyhow::Result<()> {
    let ms_config = payment_ms::Config::from_source(&env).context("payment-ms configuration")?;
    let setup = describe(&env, &ms_config);
    let payment_ms = payment_ms::Application::build(ms_config).await?;
    let payment_ms_url = format!("http://{}", payment_ms.local_addr()?);
    env.set_default("PAYMENT_MS_URL", &payment_ms_url);

    let gw_config = gateway::Config::from_source(&env).context("gateway configuration")?;
    let jwt = gw_config.jwt.clone();
    let gateway = gateway::Application::build(gw_config).await?;
    let gateway_url = format!("http://{}", gateway.local_addr()?);

    let mint = |sub: &str, roles: &[&str]| gateway::auth::mint_token(&jwt, sub, roles, TOKEN_TTL);
    let tokens = match (
        mint("user_demo", &[]),
        mint("shop_backend", &["service"]),
        mint("admin_demo", &["admin"]),
    ) {
        (Ok(user), Ok(service), Ok(admin)) => format!(
            "Tokens, valid 24 h:
  export GATEWAY={gateway_url}
  export USER_TOKEN={user}
  export SERVICE_TOKEN={service}
  export ADMIN_TOKEN={admin}

Mint more with the same key:
  JWT_HS256_SECRET={secret} cargo run -q -p gateway -- token --sub alice --roles service",
            secret = env.get("JWT_HS256_SECRET").unwrap_or_default(),
        ),
        _ => format!(
            "  export GATEWAY={gateway_url}\n\nTokens come from your identity provider (JWT_PUBLIC_KEY_PEM / JWT_JWKS_URL)."
        ),
    };

    let banner = format!(
        "
Payment stack is running ({setup}).

  gateway     {gateway_url}      (the API: {gateway_url}/api/v1/...)
  payment-ms  {payment_ms_url}   (internal API, mock checkout pages)

{tokens}

The README walks through a checkout with these. Ctrl-C stops both services.
"
    );
    // This is the command's output for the person who ran it, not a log line.
    println!("{banner}");

    let shutdown = CancellationToken::new();
    tokio::spawn(shared::shutdown::on_signal(shutdown.clone()));
    let (ms, gw) = tokio::join!(
        payment_ms.run_until(shutdown.clone()),
        gateway.run_until(shutdown.clone()),
    );
    ms.and(gw)
}

/// What the stack runs on, as the banner says it: the profile, the database (never its
/// password), the providers, and whether the keys were made for this run.
fn describe(env: &Env, config: &payment_ms::Config) -> String {
    use secrecy::ExposeSecret;
    let profile = match config.profile {
        shared::config::Profile::Dev => "dev profile",
        shared::config::Profile::Prod => "prod profile",
    };
    let url = config.database_url.expose_secret();
    let database = match url::Url::parse(url) {
        Ok(u) if u.scheme().starts_with("postgres") => format!(
            "PostgreSQL at {}{}",
            u.host_str().unwrap_or("localhost"),
            u.path()
        ),
        _ => {
            let file = url
                .trim_start_matches("sqlite:")
                .trim_start_matches("//")
                .split('?')
                .next()
                .unwrap_or_default();
            format!("SQLite ({file})")
        }
    };
    let mut providers = Vec::new();
    if config.mock_enabled {
        providers.push("mock provider");
    }
    if config.stripe.is_some() {
        providers.push("Stripe");
    }
    let keys = if env.get("JWT_PUBLIC_KEY_PEM").is_some() || env.get("JWT_JWKS_URL").is_some() {
        "your identity provider's JWT keys"
    } else {
        "keys generated for this run"
    };
    format!("{profile}: {database}, {}, {keys}", providers.join(" and "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_says_what_the_stack_runs_on() {
        let mut env = Env::from_pairs([("APP_PROFILE", "dev")]);
        let config = payment_ms::Config::from_source(&env).unwrap();
        assert_eq!(
            describe(&env, &config),
            "dev profile: SQLite (payments.db), mock provider, keys generated for this run"
        );
        env = Env::from_pairs([
            ("APP_PROFILE", "dev"),
            (
                "DATABASE_URL",
                "postgres://app:s3cret@db.internal:5432/payments",
            ),
            ("STRIPE_SECRET_KEY", "sk_test_x"),
        ]);
        let config = payment_ms::Config::from_source(&env).unwrap();
        let described = describe(&env, &config);
        assert_eq!(
            described,
            "dev profile: PostgreSQL at db.internal/payments, mock provider and Stripe, keys generated for this run"
        );
        assert!(!described.contains("s3cret"));
    }
}
