use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::{get, post};
use shared::Problem;
use shared::ids::ORDER;
use shared::internal::Role;

use super::{check_id, forward};
use crate::AppState;
use crate::auth::AuthUser;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", post(create).get(list))
        .route("/orders/{id}", get(read))
        .route("/orders/{id}/checkout", post(checkout))
        .route("/orders/{id}/cancel", post(cancel))
}

/// Only a trusted backend prices an order; a browser never does.
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    user.require_any(&[Role::Service, Role::Admin])?;
    forward(
        &state,
        &user,
        Method::POST,
        "/orders".into(),
        None,
        &headers,
        body,
    )
    .await
}

async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let path = "/orders".to_owned();
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
    check_id(ORDER, &id, "order")?;
    forward(
        &state,
        &user,
        Method::GET,
        format!("/orders/{id}"),
        None,
        &headers,
        Bytes::new(),
    )
    .await
}

async fn checkout(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    check_id(ORDER, &id, "order")?;
    let path = format!("/orders/{id}/checkout");
    forward(&state, &user, Method::POST, path, None, &headers, body).await
}

async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    check_id(ORDER, &id, "order")?;
    let path = format!("/orders/{id}/cancel");
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
