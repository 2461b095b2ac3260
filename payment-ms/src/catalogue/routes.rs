//! `/internal/v1/products`: the catalogue.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use shared::Problem;
use shared::api::Page;
use shared::catalogue::{ProductIn, ProductOut};

use super::CatalogueError;
use crate::AppState;
use crate::platform::Actor;
use crate::platform::http::error::{Error, Result};
use crate::platform::http::extract::{Json as Body, Query};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products", get(list))
        .route("/products/{sku}", get(read).put(put))
}

impl From<CatalogueError> for Error {
    fn from(e: CatalogueError) -> Self {
        match e {
            CatalogueError::Invalid(errors) => Problem::validation(errors).into(),
            CatalogueError::NotFound(what) => Problem::not_found(what).into(),
            CatalogueError::Forbidden(detail) => Problem::forbidden(detail).into(),
            CatalogueError::Fault(fault) => fault.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<u64>,
    cursor: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<ProductOut>>> {
    Ok(Json(
        super::list_products(&state.core, &actor, query.limit, query.cursor).await?,
    ))
}

async fn read(
    State(state): State<AppState>,
    actor: Actor,
    Path(sku): Path<String>,
) -> Result<Json<ProductOut>> {
    Ok(Json(super::get_product(&state.core, &actor, &sku).await?))
}

/// Created (201) or replaced (200).
async fn put(
    State(state): State<AppState>,
    actor: Actor,
    Path(sku): Path<String>,
    Body { value, .. }: Body<ProductIn>,
) -> Result<Response> {
    let (product, created) = super::put_product(&state.core, &actor, &sku, value).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(product)).into_response())
}
