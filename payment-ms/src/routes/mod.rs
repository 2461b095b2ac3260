//! The HTTP surface of payment-ms: the `/internal/v1` API for the gateway, the mock provider's
//! hosted checkout page, and health checks.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;

mod checkout;
mod health;
mod orders;
mod payments;

pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    Router::new()
        .merge(health::router())
        .merge(checkout::router())
        .nest(
            "/internal/v1",
            Router::new()
                .merge(orders::router())
                .merge(payments::router()),
        )
        .fallback(shared::problem::not_found)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::HeaderName::from_static(shared::internal::INTERNAL_TOKEN_HEADER),
                ]))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(shared::telemetry::request_span))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(axum::middleware::map_response(
                    shared::problem::problem_for_bare_errors,
                ))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    config.request_timeout,
                ))
                .layer(DefaultBodyLimit::max(config.body_limit)),
        )
}
