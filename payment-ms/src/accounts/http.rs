//! The account service over HTTP (`ACCOUNTS_URL`): `GET {url}/users/{id}` answers 200 for a
//! user, 404 for none, 410 for a deleted one; `GET {url}/healthz` says it is up.
//!
//! Each call is bounded by `ACCOUNTS_TIMEOUT`. The lookup is safe to repeat, so a failure that
//! may pass (no connection, a timeout, a 5xx or 429) is retried `ACCOUNTS_RETRIES` times with a
//! doubling delay from 100 ms; anything else is an answer.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret, SecretString};
use shared::config::{ConfigError, Env};
use url::Url;

use super::{Accounts, AccountsError, Existence, store};
use crate::platform::retry_delay;

/// `ACCOUNTS_*`: set when `ACCOUNTS_URL` is.
#[derive(Debug, Clone)]
pub struct AccountsConfig {
    pub url: Url,
    /// `ACCOUNTS_TOKEN`: sent as a bearer token when set.
    pub token: Option<SecretString>,
    /// `ACCOUNTS_TIMEOUT`: the bound on one call.
    pub timeout: Duration,
    /// `ACCOUNTS_RETRIES`: how many times a failed lookup is tried again.
    pub retries: u32,
}

impl AccountsConfig {
    pub fn from_source(env: &Env) -> Result<Option<AccountsConfig>, ConfigError> {
        if env.get("ACCOUNTS_URL").is_none_or(|u| u.trim().is_empty()) {
            return Ok(None);
        }
        let url = env.url("ACCOUNTS_URL", "")?;
        let retries: u32 = env.parse("ACCOUNTS_RETRIES", "2")?;
        if retries > 10 {
            return Err(ConfigError::invalid("ACCOUNTS_RETRIES", "must be 0 to 10"));
        }
        Ok(Some(AccountsConfig {
            url,
            token: env.secret("ACCOUNTS_TOKEN"),
            timeout: env.duration("ACCOUNTS_TIMEOUT", "2s")?,
            retries,
        }))
    }
}

pub struct HttpAccounts {
    config: AccountsConfig,
    http: reqwest::Client,
    db: DatabaseConnection,
}

impl HttpAccounts {
    pub fn new(config: AccountsConfig, db: DatabaseConnection) -> Result<Self, reqwest::Error> {
        let http = crate::platform::outbound::client(config.timeout)?;
        Ok(HttpAccounts { config, http, db })
    }

    /// `ACCOUNTS_URL` with `segments` appended (each escaped as one segment).
    fn endpoint(&self, segments: &[&str]) -> Result<Url, AccountsError> {
        crate::platform::outbound::endpoint(&self.config.url, segments)
            .ok_or_else(|| AccountsError::Unavailable("ACCOUNTS_URL cannot take a path".into()))
    }

    fn get(&self, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.get(url);
        match &self.config.token {
            Some(token) => request.bearer_auth(token.expose_secret()),
            None => request,
        }
    }

    /// One lookup: an answer, or why it may be worth another try.
    async fn look_up(&self, url: &Url) -> Result<Existence, String> {
        let response = self.get(url.clone()).send().await.map_err(|e| {
            format!(
                "no answer ({})",
                if e.is_timeout() {
                    "timed out"
                } else {
                    "connection failed"
                }
            )
        })?;
        match response.status() {
            status if status.is_success() => Ok(Existence::Exists),
            StatusCode::NOT_FOUND => Ok(Existence::Unknown),
            StatusCode::GONE => Ok(Existence::Deleted),
            status => Err(format!("answered {status}")),
        }
    }
}

#[async_trait]
impl Accounts for HttpAccounts {
    async fn existence(&self, user_id: &str) -> Result<Existence, AccountsError> {
        if store::is_deleted(&self.db, user_id).await? {
            return Ok(Existence::Deleted);
        }
        let url = self.endpoint(&["users", user_id])?;
        let mut attempt = 0;
        loop {
            match self.look_up(&url).await {
                Ok(existence) => return Ok(existence),
                Err(why) if attempt >= self.config.retries => {
                    metrics::counter!("accounts_lookup_failures_total").increment(1);
                    return Err(AccountsError::Unavailable(why));
                }
                Err(why) => {
                    tracing::debug!(attempt, reason = %why, "account lookup failed; retrying");
                    attempt += 1;
                    let delay = retry_delay(attempt, Duration::from_millis(100), Duration::MAX);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn healthy(&self) -> Option<bool> {
        let Ok(url) = self.endpoint(&["healthz"]) else {
            return Some(false);
        };
        let answered = self
            .get(url)
            .timeout(self.config.timeout.min(Duration::from_secs(1)))
            .send()
            .await;
        Some(answered.is_ok_and(|r| r.status().is_success()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_service_is_optional_and_checked() {
        let none = AccountsConfig::from_source(&Env::from_pairs([])).expect("valid");
        assert!(none.is_none());
        let config = AccountsConfig::from_source(&Env::from_pairs([
            ("ACCOUNTS_URL", "https://accounts.internal/v1"),
            ("ACCOUNTS_TOKEN", "t"),
        ]))
        .expect("valid")
        .expect("configured");
        assert_eq!(config.retries, 2);
        assert_eq!(config.timeout, Duration::from_secs(2));
        assert!(format!("{config:?}").contains("accounts.internal"));
        assert!(
            !format!("{config:?}").contains("\"t\""),
            "the token stays secret"
        );
        for (name, value) in [
            ("ACCOUNTS_URL", "ftp://x"),
            ("ACCOUNTS_RETRIES", "11"),
            ("ACCOUNTS_TIMEOUT", "soon"),
        ] {
            let mut pairs = vec![("ACCOUNTS_URL", "https://accounts.internal")];
            pairs.push((name, value));
            let err = AccountsConfig::from_source(&Env::from_pairs(pairs)).expect_err(name);
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }
}
