//! What the gateway passes through without a token: the mock provider's hosted page (the
//! buyer's browser arrives there from a redirect; set payment-ms's `PUBLIC_BASE_URL` to the
//! gateway's public URL) and inbound provider webhooks (the provider's signature, checked by
//! payment-ms, authenticates them). So a deployment can expose the gateway alone.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::{get, post};
use shared::Problem;
use shared::ids::PAYMENT;

use super::check_id;
use crate::AppState;
use crate::upstream::{Call, Repeat};

/// As payment-ms's own bound on provider webhooks.
const WEBHOOK_BODY_LIMIT: usize = 256 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/checkout/{payment_id}", get(page).post(page))
        .route("/favicon.ico", get(favicon))
        .route(
            "/providers/{provider}/webhook",
            post(provider_webhook).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)),
        )
}

async fn provider_webhook(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let known = !provider.is_empty()
        && provider.len() <= 32
        && provider.bytes().all(|b| b.is_ascii_lowercase());
    if !known {
        return Err(Problem::not_found(format!("provider {provider}")));
    }
    state
        .payment_ms
        .call(Call {
            method: Method::POST,
            path_and_query: format!("/providers/{provider}/webhook"),
            user: None,
            headers: &headers,
            body,
            repeat: Repeat::IfSafe,
        })
        .await
}

/// The hosted page's icon, which browsers ask for on their own.
async fn favicon(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    state
        .payment_ms
        .call(Call {
            method: Method::GET,
            path_and_query: "/favicon.ico".to_owned(),
            user: None,
            headers: &headers,
            body: Bytes::new(),
            repeat: Repeat::IfSafe,
        })
        .await
}

async fn page(
    State(state): State<AppState>,
    method: Method,
    Path(payment_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    check_id(PAYMENT, &payment_id, "checkout")?;
    state
        .payment_ms
        .call(Call {
            method,
            path_and_query: format!("/checkout/{payment_id}"),
            user: None,
            headers: &headers,
            body,
            repeat: Repeat::IfSafe,
        })
        .await
}
