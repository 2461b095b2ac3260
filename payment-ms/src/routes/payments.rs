use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::AppState;
use crate::auth::Caller;
use crate::error::Result;
use crate::extract::Query;
use crate::pagination::Page;
use crate::payments::{self, ListPaymentsQuery, PaymentOut};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/payments", get(list))
        .route("/payments/{id}", get(read))
        .route("/payments/{id}/verify", post(verify))
        .route("/payments/{id}/cancel", post(cancel))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListPaymentsQuery>,
) -> Result<Json<Page<PaymentOut>>> {
    Ok(Json(
        payments::list_payments(&state.db, &caller, query).await?,
    ))
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PaymentOut>> {
    Ok(Json(payments::get_payment(&state.db, &caller, &id).await?))
}

async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PaymentOut>> {
    Ok(Json(payments::verify_payment(&state, &caller, &id).await?))
}

async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PaymentOut>> {
    Ok(Json(payments::cancel_payment(&state, &caller, &id).await?))
}
