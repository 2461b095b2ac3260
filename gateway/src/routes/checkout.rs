//! The mock provider's hosted page, passed through so a deployment can expose the gateway alone
//! (set payment-ms's `PUBLIC_BASE_URL` to the gateway's public URL). No token: the buyer's
//! browser arrives here from a redirect.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::get;
use shared::Problem;
use shared::ids::PAYMENT;

use super::check_id;
use crate::AppState;
use crate::upstream::Call;

pub fn router() -> Router<AppState> {
    Router::new().route("/checkout/{payment_id}", get(page).post(page))
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
        })
        .await
}
