//! The external inventory service's API, as this service calls it (`INVENTORY_URL`; the
//! contract is in docs/orders.md):
//!
//! - `POST {url}/reservations` `{"id", "lines": [{"sku", "quantity"}], "expires_at"}` → 201 (or
//!   200 when that id exists already: the same reservation) `{"id", "status": "active", …}`;
//!   409 `{"code": "out_of_stock", "shorts": [{"sku", "wanted", "available"}]}`, nothing held.
//! - `POST {url}/reservations/{id}/commit` → 200 (again: 200); 404 unknown; 409 when it was
//!   released or expired.
//! - `POST {url}/reservations/{id}/release` → 200 (again: 200); 404 unknown; 409 when it was
//!   committed.
//!
//! Every call carries `Idempotency-Key: saga:<order>:<step>:<payment>` besides the id, is
//! bounded by `INVENTORY_TIMEOUT`, and is safe to repeat: the saga repeats it after a crash.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use shared::config::{ConfigError, Env};
use url::Url;

use crate::inventory::{Short, Want};

/// What to do with a payment that succeeds after its reservation lapsed there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatePayment {
    /// Reserve the lines again and commit them; if they are gone, refund.
    ReserveAgain,
    /// Refund the payment in full.
    Refund,
}

/// `INVENTORY_*`: set when `INVENTORY_URL` is.
#[derive(Debug, Clone)]
pub struct ExternalConfig {
    pub url: Url,
    /// `INVENTORY_TOKEN`: sent as a bearer token when set.
    pub token: Option<SecretString>,
    /// `INVENTORY_TIMEOUT`: the bound on one call.
    pub timeout: Duration,
    /// `INVENTORY_LATE_PAYMENT`: `reserve_again` (default) or `refund`.
    pub late_payment: LatePayment,
    /// `INVENTORY_RETRY_MAX`: the longest wait between two tries of a step.
    pub retry_max: Duration,
}

impl ExternalConfig {
    pub fn from_source(env: &Env) -> Result<Option<ExternalConfig>, ConfigError> {
        if env.get("INVENTORY_URL").is_none_or(|u| u.trim().is_empty()) {
            return Ok(None);
        }
        let late_payment = match env
            .get("INVENTORY_LATE_PAYMENT")
            .map(str::trim)
            .unwrap_or("reserve_again")
        {
            "reserve_again" => LatePayment::ReserveAgain,
            "refund" => LatePayment::Refund,
            _ => {
                return Err(ConfigError::invalid(
                    "INVENTORY_LATE_PAYMENT",
                    "must be reserve_again or refund",
                ));
            }
        };
        Ok(Some(ExternalConfig {
            url: env.url("INVENTORY_URL", "")?,
            token: env.secret("INVENTORY_TOKEN"),
            timeout: env.duration("INVENTORY_TIMEOUT", "5s")?,
            late_payment,
            retry_max: env.duration("INVENTORY_RETRY_MAX", "1m")?,
        }))
    }
}

/// How a call ended, when it did not succeed.
#[derive(Debug)]
pub enum CallError {
    /// Not enough stock: nothing was held.
    OutOfStock(Vec<Short>),
    /// The reservation is unknown there (404).
    Unknown,
    /// It can no longer do that (409: released or expired for a commit, committed for a
    /// release), with what it said.
    Conflict(String),
    /// No answer, a timeout, a 5xx or 429, or an answer that makes no sense: try again later.
    Unavailable(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::OutOfStock(shorts) => {
                write!(f, "out of stock: {}", crate::inventory::describe(shorts))
            }
            CallError::Unknown => f.write_str("the reservation is unknown there"),
            CallError::Conflict(what) => write!(f, "refused: {what}"),
            CallError::Unavailable(why) => write!(f, "unavailable: {why}"),
        }
    }
}

#[derive(Deserialize)]
struct Refusal {
    #[serde(default)]
    code: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    shorts: Vec<ShortOut>,
}

#[derive(Deserialize)]
struct ShortOut {
    sku: String,
    wanted: i64,
    available: i64,
}

#[derive(Deserialize)]
struct ReservationOut {
    #[serde(default)]
    lines: Vec<serde_json::Value>,
}

pub struct ExternalInventory {
    pub config: ExternalConfig,
    http: reqwest::Client,
}

impl ExternalInventory {
    pub fn new(config: ExternalConfig) -> Result<Self, reqwest::Error> {
        let http = crate::platform::outbound::client(config.timeout)?;
        Ok(ExternalInventory { config, http })
    }

    fn endpoint(&self, segments: &[&str]) -> Result<Url, CallError> {
        crate::platform::outbound::endpoint(&self.config.url, segments)
            .ok_or_else(|| CallError::Unavailable("INVENTORY_URL cannot take a path".into()))
    }

    async fn post(
        &self,
        segments: &[&str],
        key: &str,
        body: serde_json::Value,
    ) -> Result<(StatusCode, axum::body::Bytes), CallError> {
        let mut request = self
            .http
            .post(self.endpoint(segments)?)
            .header("Idempotency-Key", key)
            .json(&body);
        if let Some(token) = &self.config.token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request.send().await.map_err(|e| {
            CallError::Unavailable(if e.is_timeout() {
                "timed out".to_owned()
            } else {
                "connection failed".to_owned()
            })
        })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|_| CallError::Unavailable("the answer was cut off".to_owned()))?;
        match status {
            s if s.is_success() => Ok((s, body)),
            StatusCode::NOT_FOUND => Err(CallError::Unknown),
            StatusCode::CONFLICT => {
                let refusal: Refusal = serde_json::from_slice(&body).unwrap_or(Refusal {
                    code: String::new(),
                    detail: String::new(),
                    shorts: Vec::new(),
                });
                if refusal.code == "out_of_stock" {
                    Err(CallError::OutOfStock(
                        refusal
                            .shorts
                            .into_iter()
                            .map(|s| Short {
                                sku: s.sku,
                                wanted: s.wanted,
                                available: s.available,
                            })
                            .collect(),
                    ))
                } else {
                    Err(CallError::Conflict(format!(
                        "{} {}",
                        refusal.code, refusal.detail
                    )))
                }
            }
            s => Err(CallError::Unavailable(format!("answered {s}"))),
        }
    }

    /// Reserves `lines` under `id` until `expires_at`. Answers whether anything is held (the
    /// service holds only what it tracks).
    pub async fn reserve(
        &self,
        id: &str,
        key: &str,
        lines: &[Want],
        expires_at: DateTime<Utc>,
    ) -> Result<bool, CallError> {
        let body = serde_json::json!({
            "id": id,
            "lines": lines.iter().map(|w| serde_json::json!({"sku": w.sku, "quantity": w.quantity})).collect::<Vec<_>>(),
            "expires_at": expires_at,
        });
        let (_, answer) = self.post(&["reservations"], key, body).await?;
        let reservation: ReservationOut = serde_json::from_slice(&answer)
            .map_err(|_| CallError::Unavailable("a reservation that is not JSON".to_owned()))?;
        Ok(!reservation.lines.is_empty())
    }

    pub async fn commit(&self, id: &str, key: &str) -> Result<(), CallError> {
        self.post(&["reservations", id, "commit"], key, serde_json::json!({}))
            .await
            .map(drop)
    }

    pub async fn release(&self, id: &str, key: &str) -> Result<(), CallError> {
        self.post(&["reservations", id, "release"], key, serde_json::json!({}))
            .await
            .map(drop)
    }
}
