//! One call to Stripe: keyed, bounded, retried when Stripe was not reached or asks for it, and
//! its error object read without the key.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;

use super::wire::{ErrorBody, ErrorEnvelope};
use super::{API_VERSION, StripeProvider};
use crate::providers::ProviderError;

const ATTEMPTS: u32 = 3;

/// What a call to Stripe came to, before it is read as an object.
pub(super) enum CallError {
    /// Not reached, timed out, or a 5xx/429 that retries did not cure.
    Unavailable(String),
    /// Stripe answered with its error object.
    Refused {
        status: StatusCode,
        error: ErrorBody,
    },
}

impl From<CallError> for ProviderError {
    fn from(err: CallError) -> Self {
        match err {
            CallError::Unavailable(reason) => ProviderError::Unavailable(reason),
            CallError::Refused { status, error }
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN =>
            {
                tracing::error!(
                    status = status.as_u16(),
                    "Stripe refused our API key; check STRIPE_SECRET_KEY"
                );
                ProviderError::Unavailable(format!("Stripe refused the API key ({})", error.code()))
            }
            CallError::Refused { error, .. } => ProviderError::Rejected {
                code: error.code(),
                message: error
                    .message
                    .unwrap_or_else(|| "refused by Stripe".to_owned()),
            },
        }
    }
}

pub(super) fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl StripeProvider {
    fn url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.config.api_base.as_str().trim_end_matches('/')
        )
    }

    /// One call, retried (same idempotency key) when Stripe was not reached or asks for a
    /// retry. Only GETs and keyed POSTs are sent, so a retry never does anything twice.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<T, CallError> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            let mut request = self
                .http
                .request(method.clone(), self.url(path))
                .bearer_auth(self.config.secret_key.expose_secret())
                .header("Stripe-Version", API_VERSION)
                .query(query);
            if method == Method::POST {
                request = request.form(body);
            }
            if let Some(key) = idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => {
                    // reqwest's message names the URL and cause, never the headers.
                    last = format!("{method} {path}: {e}");
                    tracing::warn!(attempt, error = %last, "Stripe call failed");
                    continue;
                }
            };
            let status = response.status();
            let should_retry = response
                .headers()
                .get("stripe-should-retry")
                .and_then(|v| v.to_str().ok())
                .map(|v| v == "true");
            let bytes = match response.bytes().await {
                Ok(bytes) => bytes,
                Err(e) => {
                    last = format!("{method} {path}: reading the answer: {e}");
                    continue;
                }
            };
            if status.is_success() {
                return serde_json::from_slice(&bytes).map_err(|e| {
                    CallError::Unavailable(format!("{method} {path}: unexpected answer: {e}"))
                });
            }
            let retryable = should_retry.unwrap_or(
                status.is_server_error()
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::CONFLICT,
            );
            if retryable {
                last = format!("{method} {path}: Stripe answered {status}");
                tracing::warn!(attempt, %status, "Stripe asked for a retry");
                continue;
            }
            let error = serde_json::from_slice::<ErrorEnvelope>(&bytes)
                .map(|e| e.error)
                .unwrap_or_default();
            return Err(CallError::Refused { status, error });
        }
        Err(CallError::Unavailable(last))
    }

    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ProviderError> {
        Ok(self.call(Method::GET, path, query, &[], None).await?)
    }

    pub(super) async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<T, CallError> {
        self.call(Method::POST, path, &[], body, Some(idempotency_key))
            .await
    }
}
