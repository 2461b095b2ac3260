//! `/internal/v1/orders`.

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use shared::Problem;
use shared::api::{CreateOrderIn, OrderOut};

use super::model::{OrderError, OrderId};
use super::service::{self, CloseError, ListOrdersQuery};
use crate::AppState;
use crate::platform::Actor;
use crate::platform::http::error::{Error, Result, dependency_unavailable};
use crate::platform::http::extract::{IdempotencyKey, Json as Body, Query};
use crate::platform::http::{idempotency, idempotent};
use crate::platform::pagination::Page;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", post(create).get(list))
        .route("/orders/{id}", get(read))
        .route("/orders/{id}/cancel", post(cancel))
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
) -> Result<Json<OrderOut>> {
    let id = order_id(id)?;
    Ok(Json(
        service::cancel_order(&state.core, state.checkouts(), &actor, &id).await?,
    ))
}
