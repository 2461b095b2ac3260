//! The public API of DESIGN.md: authenticate, authorize what the gateway can decide alone
//! (roles), and hand the rest to payment-ms, which decides ownership with the data in hand.

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use shared::Problem;

use crate::AppState;
use crate::auth::AuthUser;
use crate::upstream::Call;

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
            "/api/v1",
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
                ]))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(shared::telemetry::request_span))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(axum::middleware::map_response(
                    shared::problem::problem_for_bare_errors,
                ))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::GATEWAY_TIMEOUT,
                    config.request_timeout,
                ))
                .layer(DefaultBodyLimit::max(config.body_limit)),
        )
}

/// 404 for an id that cannot exist, before bothering payment-ms (and so no id can reshape the
/// upstream path).
fn check_id(prefix: &str, id: &str, what: &str) -> Result<(), Problem> {
    if shared::ids::is_valid(prefix, id) {
        Ok(())
    } else {
        Err(Problem::not_found(format!("{what} {id}")))
    }
}

/// Forwards an authenticated call to `/internal/v1{path}` on payment-ms.
async fn forward(
    state: &AppState,
    user: &AuthUser,
    method: Method,
    path: String,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let mut path_and_query = format!("/internal/v1{path}");
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        path_and_query.push('?');
        path_and_query.push_str(q);
    }
    state
        .payment_ms
        .call(Call {
            method,
            path_and_query,
            user: Some(user),
            headers,
            body,
        })
        .await
}
