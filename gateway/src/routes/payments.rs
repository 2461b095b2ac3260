use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::{get, post};
use shared::Problem;
use shared::ids::PAYMENT;

use super::{check_id, forward};
use crate::AppState;
use crate::auth::AuthUser;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/payments", get(list))
        .route("/payments/{id}", get(read))
        .route("/payments/{id}/verify", post(verify))
        .route("/payments/{id}/cancel", post(cancel))
}

async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let path = "/payments".to_owned();
    forward(
        &state,
        &user,
        Method::GET,
        path,
        query.as_deref(),
        &headers,
        Bytes::new(),
    )
    .await
}

async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    check_id(PAYMENT, &id, "payment")?;
    forward(
        &state,
        &user,
        Method::GET,
        format!("/payments/{id}"),
        None,
        &headers,
        Bytes::new(),
    )
    .await
}

async fn verify(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    check_id(PAYMENT, &id, "payment")?;
    let path = format!("/payments/{id}/verify");
    forward(
        &state,
        &user,
        Method::POST,
        path,
        None,
        &headers,
        Bytes::new(),
    )
    .await
}

async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    check_id(PAYMENT, &id, "payment")?;
    let path = format!("/payments/{id}/cancel");
    forward(
        &state,
        &user,
        Method::POST,
        path,
        None,
        &headers,
        Bytes::new(),
    )
    .await
}
