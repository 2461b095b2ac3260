//! `/internal/v1/inventory/{sku}`: a SKU's stock (service and admin).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use shared::Problem;
use shared::inventory::{StockIn, StockOut};

use super::{InventoryError, stock};
use crate::AppState;
use crate::platform::Actor;
use crate::platform::http::error::{Error, Result};
use crate::platform::http::extract::Json as Body;

pub fn router() -> Router<AppState> {
    Router::new().route("/inventory/{sku}", get(get_stock).put(set_stock))
}

impl From<InventoryError> for Error {
    fn from(e: InventoryError) -> Self {
        match e {
            InventoryError::OutOfStock(shorts) => {
                Problem::conflict("out_of_stock", super::describe(&shorts)).into()
            }
            InventoryError::Invalid(errors) => Problem::validation(errors).into(),
            InventoryError::NotFound(what) => Problem::not_found(what).into(),
            InventoryError::Conflict(code, detail) => Problem::conflict(code, detail).into(),
            InventoryError::Forbidden(detail) => Problem::forbidden(detail).into(),
            InventoryError::Unavailable(detail) => {
                crate::platform::http::error::dependency_unavailable(detail).into()
            }
            InventoryError::Fault(fault) => fault.into(),
        }
    }
}

async fn get_stock(
    State(state): State<AppState>,
    actor: Actor,
    Path(sku): Path<String>,
) -> Result<Json<StockOut>> {
    Ok(Json(stock::get_stock(&state.core, &actor, &sku).await?))
}

async fn set_stock(
    State(state): State<AppState>,
    actor: Actor,
    Path(sku): Path<String>,
    Body { value, .. }: Body<StockIn>,
) -> Result<Json<StockOut>> {
    Ok(Json(
        stock::set_stock(&state.core, &actor, &sku, value).await?,
    ))
}
