//! Gateway configuration: read once from the environment at start, validated, typed.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::HeaderValue;
use jsonwebtoken::{Algorithm, DecodingKey};
use secrecy::SecretString;
use url::Url;

use shared::config::{ConfigError, Env, Profile};

use crate::limits::Rate;

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
    /// `RATE_LIMIT_USER_PER_SECOND` and `RATE_LIMIT_USER_BURST`: per token `sub`.
    pub rate_per_user: Rate,
    /// `RATE_LIMIT_IP_PER_SECOND` and `RATE_LIMIT_IP_BURST`: per client address.
    pub rate_per_address: Rate,
    /// `RATE_LIMIT_SERVICE_PER_SECOND` and `RATE_LIMIT_SERVICE_BURST`: per `sub` of a caller
    /// with the `service` or `admin` role, instead of the two above.
    pub rate_per_trusted: Rate,
    /// `TRUST_X_FORWARDED_FOR`: take the client address from the proxy in front of us.
    pub trust_forwarded_for: bool,
    /// `CORS_ALLOWED_ORIGINS`: browser origins allowed to call the API (none by default).
    pub cors_origins: Vec<HeaderValue>,
    /// `SHUTDOWN_TIMEOUT`: how long in-flight requests may finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// `HEADER_READ_TIMEOUT`: a connection that sends no whole request head within this is
    /// closed (idle kept-alive connections too).
    pub header_read_timeout: Duration,
    /// `UPSTREAM_MAX_IN_FLIGHT`: calls to payment-ms in flight at most (and so connections).
    pub upstream_max_in_flight: usize,
    /// `HEADER_LIMIT_BYTES`: the largest total size of a request's headers (then 431).
    pub header_limit: usize,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub key: JwtKey,
    /// `JWT_ISSUER`: when set, tokens must carry this `iss`.
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`: when set, tokens must carry this `aud`.
    pub audience: Option<String>,
    /// `JWT_LEEWAY`: clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// `JWT_JWKS_MIN_REFRESH`: the shortest time between two fetches of the JWKS, however many
    /// tokens name an unknown `kid`.
    pub jwks_min_refresh: Duration,
    /// `JWT_JWKS_TTL`: how long fetched keys are used before they are fetched again.
    pub jwks_ttl: Duration,
    /// `JWT_CACHE_SIZE`: how many verified tokens are remembered (0: none), so a token sent
    /// again is not verified again until it expires or its key changes.
    pub verified_cache: usize,
    /// The key is an HS256 secret made for this run (the dev profile with no key set): `main`
    /// shows it, so tokens can be minted for it.
    pub generated: bool,
}

/// Where the keys that verify tokens come from: exactly one of the three.
#[derive(Debug, Clone)]
pub enum JwtKey {
    /// `JWT_HS256_SECRET`: a shared secret; tokens are HS256.
    Hs256(SecretString),
    /// `JWT_PUBLIC_KEY_PEM` (the PEM itself, or a file holding it) and `JWT_ALGORITHM`
    /// (`RS256` or `ES256`; found from the key when unset).
    Pem { pem: String, algorithm: Algorithm },
    /// `JWT_JWKS_URL`: the identity provider's key set; each key's algorithm is its own.
    Jwks(Url),
}

const KEY_VARIABLES: &str = "JWT_HS256_SECRET, JWT_PUBLIC_KEY_PEM or JWT_JWKS_URL";

impl JwtConfig {
    pub fn from_source(env: &Env, profile: Profile) -> Result<JwtConfig, ConfigError> {
        let given: Vec<&str> = ["JWT_HS256_SECRET", "JWT_PUBLIC_KEY_PEM", "JWT_JWKS_URL"]
            .into_iter()
            .filter(|name| env.get(name).is_some())
            .collect();
        if given.len() > 1 {
            return Err(ConfigError::invalid(
                "JWT_HS256_SECRET",
                format!(
                    "set only one of {KEY_VARIABLES} (found {})",
                    given.join(", ")
                ),
            ));
        }
        let key = if let Some(secret) = env.get("JWT_HS256_SECRET") {
            if profile == Profile::Prod && secret.len() < 32 {
                return Err(ConfigError::invalid(
                    "JWT_HS256_SECRET",
                    "must be at least 32 characters",
                ));
            }
            JwtKey::Hs256(SecretString::from(secret))
        } else if let Some(value) = env.get("JWT_PUBLIC_KEY_PEM") {
            let pem = if value.contains("-----BEGIN") {
                value.to_owned()
            } else {
                std::fs::read_to_string(value).map_err(|e| {
                    ConfigError::invalid("JWT_PUBLIC_KEY_PEM", format!("reading {value}: {e}"))
                })?
            };
            let algorithm = pem_algorithm(&pem, env.get("JWT_ALGORITHM"))?;
            JwtKey::Pem { pem, algorithm }
        } else if env.get("JWT_JWKS_URL").is_some() {
            JwtKey::Jwks(env.url("JWT_JWKS_URL", "")?)
        } else {
            match profile {
                Profile::Prod => return Err(ConfigError::Missing(KEY_VARIABLES)),
                Profile::Dev => JwtKey::Hs256(SecretString::from(shared::config::random_secret())),
            }
        };
        let generated = given.is_empty();
        Ok(JwtConfig {
            key,
            issuer: env.get("JWT_ISSUER").map(str::to_owned),
            audience: env.get("JWT_AUDIENCE").map(str::to_owned),
            leeway: env.duration("JWT_LEEWAY", "30s")?,
            jwks_min_refresh: env.duration("JWT_JWKS_MIN_REFRESH", "30s")?,
            jwks_ttl: env.duration("JWT_JWKS_TTL", "10m")?,
            verified_cache: env.parse("JWT_CACHE_SIZE", "10000")?,
            generated,
        })
    }
}

/// `CORS_ALLOWED_ORIGINS`: comma-separated origins such as `https://shop.example`.
fn cors_origins(env: &Env) -> Result<Vec<HeaderValue>, ConfigError> {
    env.string("CORS_ALLOWED_ORIGINS", "")
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let url = Url::parse(origin).map_err(|e| {
                ConfigError::invalid("CORS_ALLOWED_ORIGINS", format!("`{origin}`: {e}"))
            })?;
            let serialized = url.origin().ascii_serialization();
            if !matches!(url.scheme(), "http" | "https")
                || serialized != origin.trim_end_matches('/')
            {
                return Err(ConfigError::invalid(
                    "CORS_ALLOWED_ORIGINS",
                    format!("`{origin}` is not an origin (scheme://host[:port])"),
                ));
            }
            HeaderValue::from_str(&serialized)
                .map_err(|e| ConfigError::invalid("CORS_ALLOWED_ORIGINS", e))
        })
        .collect()
}

/// The algorithm a PEM key verifies: `JWT_ALGORITHM` if set (and it must fit the key),
/// else the one its type implies.
fn pem_algorithm(pem: &str, wanted: Option<&str>) -> Result<Algorithm, ConfigError> {
    let is_rsa = DecodingKey::from_rsa_pem(pem.as_bytes()).is_ok();
    let is_ec = !is_rsa && DecodingKey::from_ec_pem(pem.as_bytes()).is_ok();
    let algorithm = match (wanted, is_rsa, is_ec) {
        (None | Some("RS256"), true, _) => Algorithm::RS256,
        (None | Some("ES256"), _, true) => Algorithm::ES256,
        (Some(other @ ("RS256" | "ES256")), _, _) => {
            return Err(ConfigError::invalid(
                "JWT_ALGORITHM",
                format!("{other} does not fit the key in JWT_PUBLIC_KEY_PEM"),
            ));
        }
        (Some(other), _, _) => {
            return Err(ConfigError::invalid(
                "JWT_ALGORITHM",
                format!("`{other}`: use RS256 or ES256"),
            ));
        }
        (None, false, false) => {
            return Err(ConfigError::invalid(
                "JWT_PUBLIC_KEY_PEM",
                "is not an RSA or P-256 public key in PEM form",
            ));
        }
    };
    Ok(algorithm)
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
            rate_per_user: Rate {
                per_second: env.parse("RATE_LIMIT_USER_PER_SECOND", "20")?,
                burst: env.parse("RATE_LIMIT_USER_BURST", "40")?,
            },
            rate_per_trusted: Rate {
                per_second: env.parse("RATE_LIMIT_SERVICE_PER_SECOND", "500")?,
                burst: env.parse("RATE_LIMIT_SERVICE_BURST", "1000")?,
            },
            rate_per_address: Rate {
                per_second: env.parse("RATE_LIMIT_IP_PER_SECOND", "50")?,
                burst: env.parse("RATE_LIMIT_IP_BURST", "100")?,
            },
            trust_forwarded_for: env.parse("TRUST_X_FORWARDED_FOR", "false")?,
            cors_origins: cors_origins(env)?,
            shutdown_timeout: env.duration("SHUTDOWN_TIMEOUT", "20s")?,
            header_read_timeout: env.duration("HEADER_READ_TIMEOUT", "10s")?,
            upstream_max_in_flight: env.parse("UPSTREAM_MAX_IN_FLIGHT", "256")?,
            header_limit: env.parse("HEADER_LIMIT_BYTES", "16384")?,
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
            "JWT_HS256_SECRET, JWT_PUBLIC_KEY_PEM or JWT_JWKS_URL is required in the prod profile"
        );
    }

    #[test]
    fn short_secrets_and_ambiguous_keys_are_refused() {
        let env = Env::from_pairs([
            ("APP_PROFILE", "prod"),
            ("INTERNAL_TOKEN", "t"),
            ("JWT_HS256_SECRET", "short"),
        ]);
        let err = Config::from_source(&env).unwrap_err().to_string();
        assert!(err.starts_with("JWT_HS256_SECRET is invalid"), "{err}");
        let env = Env::from_pairs([
            ("APP_PROFILE", "dev"),
            ("JWT_HS256_SECRET", "x"),
            ("JWT_JWKS_URL", "https://idp.example/jwks"),
        ]);
        let err = Config::from_source(&env).unwrap_err().to_string();
        assert!(err.contains("set only one of"), "{err}");
        let env = Env::from_pairs([
            ("APP_PROFILE", "dev"),
            ("JWT_PUBLIC_KEY_PEM", "-----BEGIN nonsense"),
        ]);
        let err = Config::from_source(&env).unwrap_err().to_string();
        assert!(err.starts_with("JWT_PUBLIC_KEY_PEM is invalid"), "{err}");
    }
}
