//! Reading configuration from the environment: each binary's `Config` is built from an [`Env`]
//! snapshot, and every missing or malformed variable is reported in one line that names it.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use secrecy::SecretString;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Local development: generated secrets, loopback allowed, friendly defaults.
    Dev,
    /// Everything else: no default secrets, strict checks.
    Prod,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is required in the prod profile")]
    Missing(&'static str),
    #[error("{name} is required in the prod profile: {hint}")]
    Required {
        name: &'static str,
        hint: &'static str,
    },
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl ConfigError {
    pub fn invalid(name: &'static str, reason: impl Display) -> Self {
        ConfigError::Invalid {
            name,
            reason: reason.to_string(),
        }
    }
}

/// A snapshot of environment variables. Tests build one from pairs instead of mutating the
/// process environment.
#[derive(Debug, Clone, Default)]
pub struct Env(HashMap<String, String>);

impl Env {
    pub fn process() -> Self {
        Env(std::env::vars().collect())
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    /// Sets `name` unless it is already set (and not blank).
    pub fn set_default(&mut self, name: &str, value: &str) {
        if self.get(name).is_none() {
            self.0.insert(name.to_owned(), value.to_owned());
        }
    }

    /// The value if set and not blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_owned()
    }

    pub fn secret(&self, name: &str) -> Option<SecretString> {
        self.get(name).map(SecretString::from)
    }

    pub fn required_secret(&self, name: &'static str) -> Result<SecretString, ConfigError> {
        self.secret(name).ok_or(ConfigError::Missing(name))
    }

    pub fn parse<T>(&self, name: &'static str, default: &str) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get(name)
            .unwrap_or(default)
            .parse()
            .map_err(|e| ConfigError::invalid(name, e))
    }

    /// A duration such as `30s`, `5m`, `24h` or `250ms`.
    pub fn duration(&self, name: &'static str, default: &str) -> Result<Duration, ConfigError> {
        humantime::parse_duration(self.get(name).unwrap_or(default))
            .map_err(|e| ConfigError::invalid(name, format!("{e} (write e.g. 30s, 5m, 2h)")))
    }

    /// A comma-separated list of durations, e.g. `5s,5m,30m`.
    pub fn durations(
        &self,
        name: &'static str,
        default: &str,
    ) -> Result<Vec<Duration>, ConfigError> {
        self.get(name)
            .unwrap_or(default)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                humantime::parse_duration(s).map_err(|e| {
                    ConfigError::invalid(name, format!("`{s}`: {e} (write e.g. 5s,5m,2h)"))
                })
            })
            .collect()
    }

    /// An absolute http(s) URL.
    pub fn url(&self, name: &'static str, default: &str) -> Result<Url, ConfigError> {
        let url: Url = self
            .get(name)
            .unwrap_or(default)
            .parse()
            .map_err(|e| ConfigError::invalid(name, e))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(ConfigError::invalid(name, "must be an http(s) URL"));
        }
        Ok(url)
    }

    /// `APP_PROFILE`: `dev` or `prod` (the default).
    pub fn profile(&self) -> Result<Profile, ConfigError> {
        match self.get("APP_PROFILE").unwrap_or("prod") {
            "dev" => Ok(Profile::Dev),
            "prod" => Ok(Profile::Prod),
            other => Err(ConfigError::invalid(
                "APP_PROFILE",
                format!("`{other}` is neither dev nor prod"),
            )),
        }
    }

    /// `INTERNAL_TOKEN`: required in prod; in dev, [`DEV_INTERNAL_TOKEN`] when unset.
    pub fn internal_token(&self, profile: Profile) -> Result<SecretString, ConfigError> {
        match profile {
            Profile::Dev => Ok(self
                .secret("INTERNAL_TOKEN")
                .unwrap_or_else(|| SecretString::from(DEV_INTERNAL_TOKEN))),
            Profile::Prod => self.required_secret("INTERNAL_TOKEN"),
        }
    }

    /// `LOG_FORMAT=json` switches logs to one JSON object per line.
    pub fn log_json(&self) -> bool {
        self.get("LOG_FORMAT")
            .is_some_and(|v| v.eq_ignore_ascii_case("json"))
    }
}

/// The internal token both binaries use in the dev profile when `INTERNAL_TOKEN` is unset, so
/// that a gateway and a payment-ms started separately on one machine still understand each
/// other. The prod profile never uses it.
pub const DEV_INTERNAL_TOKEN: &str = "dev-internal-token-not-for-production";

/// 32 random bytes, base64url: for generated development secrets.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_count_as_unset() {
        let env = Env::from_pairs([("A", "  "), ("B", "x")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B"), Some("x"));
        assert_eq!(
            env.required_secret("A").unwrap_err(),
            ConfigError::Missing("A")
        );
    }

    #[test]
    fn durations_and_urls_are_checked() {
        let env = Env::from_pairs([("D", "90s"), ("U", "ftp://x"), ("APP_PROFILE", "staging")]);
        assert_eq!(env.duration("D", "1s").unwrap(), Duration::from_secs(90));
        assert!(env.url("U", "http://a").is_err());
        assert_eq!(
            env.profile().unwrap_err().to_string(),
            "APP_PROFILE is invalid: `staging` is neither dev nor prod"
        );
        assert_eq!(Env::default().profile().unwrap(), Profile::Prod);
    }

    #[test]
    fn random_secrets_differ() {
        assert_ne!(random_secret(), random_secret());
        assert_eq!(random_secret().len(), 43);
    }
}
