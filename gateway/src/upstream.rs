//! The client for payment-ms. Every call carries the internal token, the caller's identity and
//! the request id; failures of payment-ms itself become 502/503/504 problems for the client.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};
use shared::Problem;
use shared::internal::{
    IDEMPOTENCY_KEY_HEADER, INTERNAL_TOKEN_HEADER, REQUEST_ID_HEADER, USER_ID_HEADER,
    USER_ROLES_HEADER,
};
use url::Url;

use crate::auth::AuthUser;

/// Response headers of payment-ms that mean something to the client.
const PASSED_BACK: &[&str] = &[
    "content-type",
    "location",
    "cache-control",
    "retry-after",
    "idempotent-replayed",
];

#[derive(Clone)]
pub struct PaymentMs {
    client: reqwest::Client,
    base: Url,
    token: SecretString,
    /// Bounds the calls (and so the connections) in flight to payment-ms.
    slots: Arc<Semaphore>,
    timeout: Duration,
}

/// Attempts of a call that is safe to repeat (a GET, or a POST with an Idempotency-Key).
const ATTEMPTS_IF_SAFE: usize = 3;

/// One call to payment-ms.
pub struct Call<'a> {
    pub method: Method,
    /// Path and query on payment-ms, e.g. `/internal/v1/orders?limit=5`.
    pub path_and_query: String,
    /// The authenticated caller; `None` for public pages.
    pub user: Option<&'a AuthUser>,
    /// The incoming request's headers (request id, idempotency key, content type).
    pub headers: &'a HeaderMap,
    pub body: Bytes,
}

impl PaymentMs {
    pub fn new(
        base: Url,
        token: SecretString,
        timeout: Duration,
        max_in_flight: usize,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2).min(timeout))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            // payment-ms answers the hosted page's form with a 303 meant for the browser.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(PaymentMs {
            client,
            base,
            token,
            slots: Arc::new(Semaphore::new(max_in_flight.max(1))),
            timeout,
        })
    }

    /// Calls payment-ms. A call that is safe to repeat is retried (twice, briefly) when
    /// payment-ms could not be reached or answered 502/503; anything else is tried once.
    pub async fn call(&self, call: Call<'_>) -> Result<Response, Problem> {
        let _slot = tokio::time::timeout(self.timeout, self.slots.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| {
                Problem::service_unavailable(
                    "upstream_busy",
                    "Too many requests are waiting for the payment service; retry shortly",
                )
            })?;
        let safe = call.method == Method::GET || call.headers.contains_key(IDEMPOTENCY_KEY_HEADER);
        let attempts = if safe { ATTEMPTS_IF_SAFE } else { 1 };
        let mut last = Err(bad_gateway());
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
            }
            last = self.call_once(&call).await;
            // Only when payment-ms was unreachable or cut the connection (not a timeout:
            // three of those would take too long). An answer, even a 502 about a payment
            // provider, is payment-ms's to give; retrying it here would multiply the calls
            // to a provider that is already struggling.
            let retry = matches!(&last, Err(p) if matches!(p.status, 502 | 503));
            if !retry {
                break;
            }
        }
        last
    }

    async fn call_once(&self, call: &Call<'_>) -> Result<Response, Problem> {
        // The base's scheme and host, with this call's path and query: set, not parsed as a
        // whole URL (with its host) on every call.
        let mut url = self.base.clone();
        let (path, query) = match call.path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (call.path_and_query.as_str(), None),
        };
        url.set_path(path);
        url.set_query(query);
        let mut request = self.client.request(call.method.clone(), url);
        for name in [
            REQUEST_ID_HEADER,
            IDEMPOTENCY_KEY_HEADER,
            "content-type",
            "stripe-signature",
        ] {
            if let Some(value) = call.headers.get(name) {
                request = request.header(name, value);
            }
        }
        if let Some(user) = call.user {
            request = request
                .header(INTERNAL_TOKEN_HEADER, self.token.expose_secret())
                .header(USER_ID_HEADER, &user.user_id)
                .header(USER_ROLES_HEADER, user.roles_header());
        }
        let response = request
            .body(call.body.clone())
            .send()
            .await
            .map_err(upstream_failure)?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED && call.user.is_some() {
            // payment-ms refused *our* credentials: a deployment mistake, not the client's.
            tracing::error!("payment-ms refused the internal token; check INTERNAL_TOKEN on both");
            return Err(bad_gateway());
        }
        let mut headers = HeaderMap::new();
        for name in PASSED_BACK {
            if let Some(value) = response.headers().get(*name) {
                headers.insert(HeaderName::from_static(name), value.clone());
            }
        }
        let body = response.bytes().await.map_err(upstream_failure)?;
        let mut out = Response::new(Body::from(body));
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }

    /// Whether payment-ms (and so its database) is ready.
    pub async fn ready(&self) -> bool {
        let Ok(url) = self.base.join("/readyz") else {
            return false;
        };
        matches!(self.client.get(url).send().await, Ok(r) if r.status().is_success())
    }
}

fn bad_gateway() -> Problem {
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        "Bad gateway",
        "The payment service gave an unusable answer",
    )
}

fn upstream_failure(err: reqwest::Error) -> Problem {
    if err.is_timeout() {
        tracing::warn!(error = %err, "payment-ms timed out");
        Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "Gateway timeout",
            "The payment service did not answer in time",
        )
    } else if err.is_connect() {
        tracing::warn!(error = %err, "payment-ms unreachable");
        Problem::service_unavailable(
            "upstream_unavailable",
            "The payment service is unavailable; retry later",
        )
    } else {
        tracing::warn!(error = %err, "payment-ms call failed");
        bad_gateway()
    }
}
