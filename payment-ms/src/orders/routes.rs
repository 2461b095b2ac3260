use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::AppState;
use crate::orders::service::{self as orders, CreateOrderIn, ListOrdersQuery, OrderOut};
use crate::payments::service::{self as payments, CheckoutIn};
use crate::platform::http::caller::Caller;
use crate::platform::http::error::Result;
use crate::platform::http::extract::{IdempotencyKey, Json as Body, Query};
use crate::platform::http::idempotency;
use crate::platform::http::idempotent;
use crate::platform::pagination::Page;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", post(create).get(list))
        .route("/orders/{id}", get(read))
        .route("/orders/{id}/checkout", post(checkout))
        .route("/orders/{id}/cancel", post(cancel))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    uri: Uri,
    Body { value, raw }: Body<CreateOrderIn>,
) -> Response {
    let request = idempotent(&state, &caller, key, &uri, &raw);
    idempotency::run(request, |claim| {
        orders::create_order(&state, &caller, value, claim)
    })
    .await
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListOrdersQuery>,
) -> Result<Json<Page<OrderOut>>> {
    Ok(Json(orders::list_orders(&state.db, &caller, query).await?))
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OrderOut>> {
    Ok(Json(orders::get_order(&state.db, &caller, &id).await?))
}

async fn checkout(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    uri: Uri,
    Path(id): Path<String>,
    Body { value, raw }: Body<CheckoutIn>,
) -> Response {
    let request = idempotent(&state, &caller, key, &uri, &raw);
    idempotency::run(request, |claim| {
        payments::checkout(&state, &caller, &id, value, claim)
    })
    .await
}

async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OrderOut>> {
    Ok(Json(orders::cancel_order(&state, &caller, &id).await?))
}
