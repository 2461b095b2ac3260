//! Gateway configuration: read once from the environment at start, validated, typed.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use shared::config::{ConfigError, Env, Profile};

#[derive(Debug, Clone)]
pub struct Config {
    pub profile: Profile,
    /// `GATEWAY_ADDR`; port 0 picks a free port (tests).
    pub addr: SocketAddr,
    /// `PAYMENT_MS_URL`: where payment-ms listens.
    pub payment_ms_url: Url,
    /// `INTERNAL_TOKEN`: presented to payment-ms on every call.
    pub internal_token: SecretString,
    pub jwt: JwtConfig,
    /// `UPSTREAM_TIMEOUT`: the bound on one call to payment-ms.
    pub upstream_timeout: Duration,
    /// `REQUEST_TIMEOUT`: the bound on handling one request.
    pub request_timeout: Duration,
    /// `BODY_LIMIT_BYTES`: the largest request body accepted.
    pub body_limit: usize,
    pub log_json: bool,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// `JWT_HS256_SECRET`: the shared secret tokens are signed with.
    pub hs256_secret: SecretString,
    /// `JWT_ISSUER`: when set, tokens must carry this `iss`.
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`: when set, tokens must carry this `aud`.
    pub audience: Option<String>,
    /// `JWT_LEEWAY`: clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
}

impl JwtConfig {
    pub fn from_source(env: &Env, profile: Profile) -> Result<JwtConfig, ConfigError> {
        for unsupported in ["JWT_PUBLIC_KEY_PEM", "JWT_JWKS_URL"] {
            if env.get(unsupported).is_some() {
                return Err(ConfigError::invalid(
                    unsupported,
                    "RS256/ES256 keys are not supported by this version; use JWT_HS256_SECRET",
                ));
            }
        }
        let hs256_secret = match (env.secret("JWT_HS256_SECRET"), profile) {
            (Some(secret), _) => secret,
            (None, Profile::Prod) => return Err(ConfigError::Missing("JWT_HS256_SECRET")),
            (None, Profile::Dev) => {
                tracing::warn!("JWT_HS256_SECRET is not set: using a random key for this run");
                SecretString::from(shared::config::random_secret())
            }
        };
        if let (Profile::Prod, Some(secret)) = (profile, env.get("JWT_HS256_SECRET"))
            && secret.len() < 32
        {
            return Err(ConfigError::invalid(
                "JWT_HS256_SECRET",
                "must be at least 32 characters",
            ));
        }
        Ok(JwtConfig {
            hs256_secret,
            issuer: env.get("JWT_ISSUER").map(str::to_owned),
            audience: env.get("JWT_AUDIENCE").map(str::to_owned),
            leeway: env.duration("JWT_LEEWAY", "30s")?,
        })
    }
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_source(&Env::process())
    }

    pub fn from_source(env: &Env) -> Result<Config, ConfigError> {
        let profile = env.profile()?;
        let internal_token = env.internal_token(profile)?;
        Ok(Config {
            profile,
            addr: env.parse("GATEWAY_ADDR", "127.0.0.1:8080")?,
            payment_ms_url: env.url("PAYMENT_MS_URL", "http://127.0.0.1:8081")?,
            internal_token,
            jwt: JwtConfig::from_source(env, profile)?,
            upstream_timeout: env.duration("UPSTREAM_TIMEOUT", "10s")?,
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
    fn prod_names_each_missing_secret() {
        let env = Env::from_pairs([("APP_PROFILE", "prod")]);
        assert_eq!(
            Config::from_source(&env).unwrap_err().to_string(),
            "INTERNAL_TOKEN is required in the prod profile"
        );
        let env = Env::from_pairs([("APP_PROFILE", "prod"), ("INTERNAL_TOKEN", "t")]);
        assert_eq!(
            Config::from_source(&env).unwrap_err().to_string(),
            "JWT_HS256_SECRET is required in the prod profile"
        );
    }

    #[test]
    fn short_secrets_and_unsupported_keys_are_refused() {
        let env = Env::from_pairs([
            ("APP_PROFILE", "prod"),
            ("INTERNAL_TOKEN", "t"),
            ("JWT_HS256_SECRET", "short"),
        ]);
        let err = Config::from_source(&env).unwrap_err().to_string();
        assert!(err.starts_with("JWT_HS256_SECRET is invalid"), "{err}");
        let env = Env::from_pairs([("APP_PROFILE", "dev"), ("JWT_JWKS_URL", "https://x")]);
        let err = Config::from_source(&env).unwrap_err().to_string();
        assert!(err.starts_with("JWT_JWKS_URL is invalid"), "{err}");
    }
}
