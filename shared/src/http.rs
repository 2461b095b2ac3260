//! The HTTP plumbing both binaries put around their routes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{Value, json};
use tower::ServiceBuilder;
use tracing::Instrument;

use crate::internal::names::REQUEST_ID;

/// A check a request meets before its handler (the gateway's header size and per-address
/// limits): `Some(answer)` refuses the request with that answer.
pub type Admission = Arc<dyn Fn(&Request) -> Option<Response> + Send + Sync>;

/// Bounds and logging of every request.
pub struct Limits {
    /// The `service` label of the request metrics.
    pub service: &'static str,
    pub request_timeout: Duration,
    /// What a request that runs out of time answers (the gateway says 504, payment-ms 503).
    pub timeout_status: StatusCode,
    pub body_limit: usize,
    /// Run on every request once its id and span are set, before its handler.
    pub admission: Option<Admission>,
}

/// What [`edge`] needs to know.
struct Edge {
    limits: Limits,
    sensitive: Vec<HeaderName>,
}

/// Wraps `router` in what every request goes through: a request id (kept from the client or
/// made), a log span carrying it, sensitive headers kept out of logs, the admission check, a
/// time limit, problem+json for bare errors, request metrics and a body size limit.
pub fn with_common_layers(router: Router, limits: Limits, sensitive: &[HeaderName]) -> Router {
    crate::metrics::install();
    let body_limit = limits.body_limit;
    let edge_state = Arc::new(Edge {
        limits,
        sensitive: sensitive.to_vec(),
    });
    // One middleware rather than a tower layer for each of these: every layer added to a
    // router wraps each route once more (a boxed service, a future nested in the next), which
    // on a proxied request cost more than the work the layers do.
    router.layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(edge_state, edge))
            .layer(DefaultBodyLimit::max(body_limit)),
    )
}

async fn edge(State(edge): State<Arc<Edge>>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let limits = &edge.limits;
    let headers = request.headers_mut();
    for name in &edge.sensitive {
        if let Some(value) = headers.get_mut(name) {
            value.set_sensitive(true);
        }
    }
    let request_id = match headers.get(&REQUEST_ID) {
        Some(id) => id.clone(),
        None => {
            let id = new_request_id();
            headers.insert(REQUEST_ID, id.clone());
            id
        }
    };
    let span = crate::telemetry::request_span(&request, &request_id);
    let method = crate::metrics::method_label(request.method());
    // The route template (never the raw path, whose ids would make every request a series).
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let answered = match limits.admission.as_ref().and_then(|admit| admit(&request)) {
        Some(refusal) => Ok(refusal),
        None => {
            tokio::time::timeout(limits.request_timeout, next.run(request))
                .instrument(span.clone())
                .await
        }
    };
    let mut response = match answered {
        Ok(response) => response,
        Err(_) => {
            span.in_scope(
                || tracing::warn!(timeout = ?limits.request_timeout, "request timed out"),
            );
            limits.timeout_status.into_response()
        }
    };
    response = crate::problem::problem_for_bare_errors(response);
    if !response.headers().contains_key(&REQUEST_ID) {
        response.headers_mut().insert(REQUEST_ID, request_id);
    }
    let elapsed = started.elapsed();
    let status = response.status();
    span.in_scope(|| {
        let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), latency_us, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), latency_us, "request finished");
        }
    });
    crate::metrics::record_request(limits.service, method, route, status, elapsed);
    response
}

/// A fresh request id: a random UUID.
fn new_request_id() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    // A hyphenated UUID is always a valid header value.
    HeaderValue::from_str(id).unwrap_or(HeaderValue::from_static("-"))
}

/// How the server treats connections.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// A connection that has not sent a whole request head within this is closed: at its
    /// start, and between the requests of a kept-alive connection (so an idle connection is
    /// closed after it too). Slow or silent clients cannot hold connections open.
    pub header_read_timeout: Duration,
    /// How long in-flight requests may finish after shutdown begins.
    pub shutdown_bound: Duration,
}

/// Serves `router` over HTTP/1.1 until `shutdown` is cancelled, then stops accepting and lets
/// in-flight requests finish for at most `options.shutdown_bound` before returning anyway.
/// Each request carries [`axum::extract::ConnectInfo`] with the peer's address.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: tokio_util::sync::CancellationToken,
    options: ServeOptions,
) -> std::io::Result<()> {
    use axum::extract::ConnectInfo;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request.map(axum::body::Body::new))
            });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(options.shutdown_bound) => {
            tracing::warn!(bound = ?options.shutdown_bound, "in-flight requests did not finish in time; closing them");
        }
    }
    Ok(())
}

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
