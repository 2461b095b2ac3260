//! The HTTP plumbing both binaries put around their routes.

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::{Json, Router};
use serde_json::{Value, json};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Bounds and logging of every request.
pub struct Limits {
    /// The `service` label of the request metrics.
    pub service: &'static str,
    pub request_timeout: Duration,
    /// What a request that runs out of time answers (the gateway says 504, payment-ms 503).
    pub timeout_status: StatusCode,
    pub body_limit: usize,
}

/// Wraps `router` in what every request goes through: a request id (kept from the client or
/// made), a log span carrying it, sensitive headers kept out of logs, problem+json for bare
/// errors, a time limit and a body size limit.
pub fn with_common_layers(router: Router, limits: &Limits, sensitive: &[HeaderName]) -> Router {
    crate::metrics::install();
    router
        .layer(axum::middleware::from_fn_with_state(
            limits.service,
            crate::metrics::track,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new(
                    sensitive.iter().cloned(),
                ))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(crate::telemetry::request_span))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(axum::middleware::map_response(
                    crate::problem::problem_for_bare_errors,
                ))
                .layer(TimeoutLayer::with_status_code(
                    limits.timeout_status,
                    limits.request_timeout,
                ))
                .layer(DefaultBodyLimit::max(limits.body_limit)),
        )
}

/// Serves `router` until `shutdown` is cancelled, then stops accepting and lets in-flight
/// requests finish for at most `bound` before returning anyway.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: tokio_util::sync::CancellationToken,
    bound: Duration,
) -> std::io::Result<()> {
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(bound).await;
    };
    tokio::select! {
        served = server => served,
        _ = deadline => {
            tracing::warn!(bound = ?bound, "in-flight requests did not finish in time; closing them");
            Ok(())
        }
    }
}

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
