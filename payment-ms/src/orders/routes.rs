//! `/internal/v1/orders`.

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use shared::Problem;
use shared::api::{CreateOrderIn, OrderItemIn, OrderOut};
use shared::orders::{
    CancelOrderIn, OrderHistoryOut, OrderTransitionIn, UpdateOrderIn, UpdateOrderItemIn,
};

use super::model::{OrderError, OrderId};
use super::service::{self, CloseError, ListOrdersQuery};
use super::{edits, moves};
use crate::AppState;
use crate::platform::Actor;
use crate::platform::http::error::{Error, Result, dependency_unavailable};
use crate::platform::http::extract::{IdempotencyKey, Json as Body, OptionalJson, Query};
use crate::platform::http::{idempotency, idempotent};
use crate::platform::pagination::Page;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", post(create).get(list))
        .route("/orders/{id}", get(read).patch(update))
        .route("/orders/{id}/cancel", post(cancel))
        .route("/orders/{id}/transition", post(transition))
        .route("/orders/{id}/history", get(history))
        .route("/orders/{id}/items", post(add_item))
        .route(
            "/orders/{id}/items/{item_id}",
            patch(update_item).delete(remove_item),
        )
}

impl From<OrderError> for Error {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::Invalid(errors) => Problem::validation(errors).into(),
            OrderError::NotFound(id) => Problem::not_found(format!("order {id}")).into(),
            OrderError::Forbidden(detail) => Problem::forbidden(detail).into(),
            OrderError::NotCancelable(detail) => {
                Problem::conflict("order_not_cancelable", detail).into()
            }
            OrderError::NotPayable(detail) => Problem::conflict("order_not_payable", detail).into(),
            OrderError::NotMovable(detail) => {
                Problem::conflict("order_transition_not_allowed", detail).into()
            }
            OrderError::NotEditable(detail) => {
                Problem::conflict("order_not_editable", detail).into()
            }
            OrderError::Unavailable(detail) => dependency_unavailable(detail).into(),
            OrderError::Fault(fault) => fault.into(),
        }
    }
}

impl<E: Into<Error>> From<CloseError<E>> for Error {
    fn from(e: CloseError<E>) -> Self {
        match e {
            CloseError::Order(e) => e.into(),
            CloseError::Checkouts(e) => e.into(),
        }
    }
}

async fn create(
    State(state): State<AppState>,
    actor: Actor,
    key: IdempotencyKey,
    uri: Uri,
    Body { value, raw }: Body<CreateOrderIn>,
) -> Response {
    let request = idempotent(&state, &actor, key, &uri, &raw);
    let (state, actor) = (&state, &actor);
    idempotency::run(request, |then| async move {
        let accounts = state.accounts.as_ref();
        let ttl = state.config.order_ttl;
        Ok(service::create_order(&state.core, accounts, ttl, actor, value, &then).await?)
    })
    .await
}

async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<ListOrdersQuery>,
) -> Result<Json<Page<OrderOut>>> {
    Ok(Json(
        service::list_orders(&state.core, &actor, query).await?,
    ))
}

/// The order id in a path: another shape names no order.
pub fn order_id(raw: String) -> Result<OrderId, OrderError> {
    OrderId::parse(&raw).ok_or(OrderError::NotFound(raw))
}

async fn read(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<OrderOut>> {
    let id = order_id(id)?;
    Ok(Json(service::get_order(&state.core, &actor, &id).await?))
}

async fn cancel(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    OptionalJson(input): OptionalJson<CancelOrderIn>,
) -> Result<Json<OrderOut>> {
    let id = order_id(id)?;
    let checkouts = state.checkouts();
    Ok(Json(
        service::cancel_order(&state.core, checkouts, &actor, &id, input.reason).await?,
    ))
}

async fn transition(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body { value, .. }: Body<OrderTransitionIn>,
) -> Result<Json<OrderOut>> {
    let id = order_id(id)?;
    let checkouts = state.checkouts();
    Ok(Json(
        moves::transition_order(&state.core, checkouts, &actor, &id, value).await?,
    ))
}

async fn history(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<Vec<OrderHistoryOut>>> {
    let id = order_id(id)?;
    Ok(Json(moves::order_history(&state.core, &actor, &id).await?))
}

async fn update(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body { value, .. }: Body<UpdateOrderIn>,
) -> Result<Json<OrderOut>> {
    let id = order_id(id)?;
    Ok(Json(
        edits::update_order(&state.core, &actor, &id, value).await?,
    ))
}

async fn add_item(
    State(state): State<AppState>,
    actor: Actor,
    key: IdempotencyKey,
    uri: Uri,
    Path(id): Path<String>,
    Body { value, raw }: Body<OrderItemIn>,
) -> Response {
    let mut request = idempotent(&state, &actor, key, &uri, &raw);
    // The answer is the order, changed, not a new resource.
    request.status = axum::http::StatusCode::OK;
    let (state, actor) = (&state, &actor);
    idempotency::run(request, |then| async move {
        let id = order_id(id)?;
        Ok(edits::add_item(&state.core, actor, &id, value, &then).await?)
    })
    .await
}

/// A line's id in a path: another shape names no line.
fn item_id(raw: &str) -> Result<&str, OrderError> {
    if shared::ids::is_valid(shared::ids::ORDER_ITEM, raw) {
        Ok(raw)
    } else {
        Err(OrderError::NotFound(format!("line {raw}")))
    }
}

async fn update_item(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, item)): Path<(String, String)>,
    Body { value, .. }: Body<UpdateOrderItemIn>,
) -> Result<Json<OrderOut>> {
    let id = order_id(id)?;
    let item = item_id(&item)?;
    Ok(Json(
        edits::update_item(&state.core, &actor, &id, item, value).await?,
    ))
}

async fn remove_item(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, item)): Path<(String, String)>,
) -> Result<Json<OrderOut>> {
    let id = order_id(id)?;
    let item = item_id(&item)?;
    Ok(Json(
        edits::remove_item(&state.core, &actor, &id, item).await?,
    ))
}
