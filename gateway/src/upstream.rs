//! The client for payment-ms. Every call carries the internal token, the caller's identity and
//! the request id; failures of payment-ms itself become 502/503/504 problems for the client.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use axum::response::Response;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use secrecy::{ExposeSecret, SecretString};
use shared::Problem;
use shared::internal::names::{
    IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, INTERNAL_TOKEN, REQUEST_ID, USER_ID, USER_ROLES,
};
use url::Url;

use crate::auth::AuthUser;

/// Request headers passed on to payment-ms as they came. `Origin` and `Sec-Fetch-Site` let
/// the hosted checkout page refuse a form sent from another site.
const PASSED_ON: [HeaderName; 6] = [
    REQUEST_ID,
    IDEMPOTENCY_KEY,
    header::CONTENT_TYPE,
    HeaderName::from_static("stripe-signature"),
    header::ORIGIN,
    HeaderName::from_static("sec-fetch-site"),
];

/// Response headers of payment-ms that mean something to the client, the hosted page's
/// security headers among them.
const PASSED_BACK: [HeaderName; 10] = [
    header::CONTENT_TYPE,
    header::CONTENT_DISPOSITION,
    header::LOCATION,
    header::CACHE_CONTROL,
    header::RETRY_AFTER,
    IDEMPOTENT_REPLAYED,
    header::CONTENT_SECURITY_POLICY,
    header::X_FRAME_OPTIONS,
    header::X_CONTENT_TYPE_OPTIONS,
    header::REFERRER_POLICY,
];

/// hyper's own pooled client (over rustls for an `https` URL): the gateway's hottest path, where
/// reqwest's conveniences (its URL type, parsed again by its redirect layer even with redirects
/// off; its header and body wrappers) cost more per request than the hop itself needs.
type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub struct PaymentMs {
    client: HttpClient,
    /// `scheme://host:port` of payment-ms; each call appends its path and query.
    origin: String,
    /// Its readiness check, made once.
    readyz: Uri,
    /// `INTERNAL_TOKEN` as a header value, made once, marked sensitive so that `Debug` (and so
    /// any log of a request) hides it.
    token: HeaderValue,
    /// Bounds the calls (and so the connections) in flight to payment-ms.
    slots: Arc<Semaphore>,
    timeout: Duration,
}

/// How long an idle connection to payment-ms is kept for reuse.
const UPSTREAM_IDLE: Duration = Duration::from_secs(5);

/// Attempts of a call that is safe to repeat (a GET, or a POST with an Idempotency-Key).
const ATTEMPTS_IF_SAFE: usize = 3;

/// Whether, and how often, a call may be tried when payment-ms could not be reached or
/// dropped the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// A GET, or a POST with an Idempotency-Key: up to three attempts.
    IfSafe,
    /// A call that changes nothing the second time (`verify`): one more attempt.
    Once,
}

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
    pub repeat: Repeat,
}

impl PaymentMs {
    pub fn new(
        base: Url,
        token: SecretString,
        timeout: Duration,
        max_in_flight: usize,
    ) -> anyhow::Result<Self> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(2).min(timeout)));
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_platform_verifier(rustls::crypto::aws_lc_rs::default_provider())?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        // payment-ms answers the hosted page's form with a 303 meant for the browser: this
        // client follows no redirects.
        let client = Client::builder(TokioExecutor::new())
            // Below payment-ms's HEADER_READ_TIMEOUT (10 s by default), which closes idle
            // connections: one is never reused just as payment-ms closes it.
            .pool_idle_timeout(UPSTREAM_IDLE)
            .pool_max_idle_per_host(64)
            .pool_timer(TokioTimer::new())
            .build(connector);
        let origin = base.origin().ascii_serialization();
        anyhow::ensure!(
            origin.starts_with("http"),
            "PAYMENT_MS_URL must be an http or https URL"
        );
        let readyz = format!("{origin}/readyz").parse()?;
        let mut token = HeaderValue::from_str(token.expose_secret())
            .map_err(|_| anyhow::anyhow!("INTERNAL_TOKEN is not a valid header value"))?;
        token.set_sensitive(true);
        Ok(PaymentMs {
            client,
            origin,
            readyz,
            token,
            slots: Arc::new(Semaphore::new(max_in_flight.max(1))),
            timeout,
        })
    }

    /// Calls payment-ms. A call that is safe to repeat is retried (twice, briefly; `verify`
    /// once) when payment-ms could not be reached or dropped the connection; anything else is
    /// tried once.
    pub async fn call(&self, call: Call<'_>) -> Result<Response, Problem> {
        // A free slot is taken at once; only a wait needs a timer.
        let slot = match self.slots.try_acquire() {
            Ok(slot) => Some(slot),
            Err(_) => tokio::time::timeout(self.timeout, self.slots.acquire())
                .await
                .ok()
                .and_then(Result::ok),
        };
        let _slot = slot.ok_or_else(|| {
            Problem::service_unavailable(
                "upstream_busy",
                "Too many requests are waiting for the payment service; retry shortly",
            )
        })?;
        let safe = call.method == Method::GET || call.headers.contains_key(&IDEMPOTENCY_KEY);
        let attempts = match (call.repeat, safe) {
            (_, true) => ATTEMPTS_IF_SAFE,
            (Repeat::Once, false) => 2,
            (Repeat::IfSafe, false) => 1,
        };
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
        let uri: Uri = format!("{}{}", self.origin, call.path_and_query)
            .parse()
            .map_err(|_| Problem::not_found("this resource"))?;
        let mut request = Request::new(Full::new(call.body.clone()));
        *request.method_mut() = call.method.clone();
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        for name in PASSED_ON {
            if let Some(value) = call.headers.get(&name) {
                headers.insert(name, value.clone());
            }
        }
        if let Some(user) = call.user {
            headers.insert(INTERNAL_TOKEN, self.token.clone());
            let identity = [
                // As UTF-8 bytes: a `sub` may be any text without control characters.
                (USER_ID, HeaderValue::from_bytes(user.user_id.as_bytes())),
                (USER_ROLES, HeaderValue::from_str(&user.roles_header())),
            ];
            for (name, value) in identity {
                let value = value.map_err(|_| {
                    tracing::warn!(header = %name, "a header for payment-ms is not a valid header value");
                    bad_gateway()
                })?;
                headers.insert(name, value);
            }
        }
        // The whole exchange, the answer's body included, within the upstream timeout.
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(upstream_failure)?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| {
                tracing::warn!(error = %e, "payment-ms's answer was cut");
                bad_gateway()
            })?;
            Ok::<_, Problem>((parts, body.to_bytes()))
        };
        let (parts, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                tracing::warn!("payment-ms timed out");
                Problem::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    "Gateway timeout",
                    "The payment service did not answer in time",
                )
            })??;
        if parts.status == StatusCode::UNAUTHORIZED && call.user.is_some() {
            // payment-ms refused *our* credentials: a deployment mistake, not the client's.
            tracing::error!("payment-ms refused the internal token; check INTERNAL_TOKEN on both");
            return Err(bad_gateway());
        }
        let mut headers = HeaderMap::new();
        for name in PASSED_BACK {
            if let Some(value) = parts.headers.get(&name) {
                headers.insert(name, value.clone());
            }
        }
        let mut out = Response::new(Body::from(body));
        *out.status_mut() = parts.status;
        *out.headers_mut() = headers;
        Ok(out)
    }

    /// Whether payment-ms (and so its database) is ready.
    pub async fn ready(&self) -> bool {
        let Ok(request) = Request::get(self.readyz.clone()).body(Full::new(Bytes::new())) else {
            return false;
        };
        let answered = tokio::time::timeout(self.timeout, self.client.request(request)).await;
        matches!(answered, Ok(Ok(r)) if r.status().is_success())
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

fn upstream_failure(err: hyper_util::client::legacy::Error) -> Problem {
    if err.is_connect() {
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
