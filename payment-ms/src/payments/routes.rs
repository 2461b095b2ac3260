use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use shared::api::{RefundIn, RefundOut};

use crate::AppState;
use crate::payments::service::{self as payments, ListPaymentsQuery, PaymentOut};
use crate::platform::http::caller::Caller;
use crate::platform::http::error::Result;
use crate::platform::http::extract::{IdempotencyKey, Json as Body, Query};
use crate::platform::http::idempotency;
use crate::platform::http::idempotent;
use crate::platform::pagination::Page;
use crate::refunds::service::{self as refunds, ListRefundsQuery};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/payments", get(list))
        .route("/payments/{id}", get(read))
        .route("/payments/{id}/verify", post(verify))
        .route("/payments/{id}/cancel", post(cancel))
        .route("/payments/{id}/refunds", post(refund).get(list_refunds))
}

async fn refund(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    uri: Uri,
    Path(id): Path<String>,
    Body { value, raw }: Body<RefundIn>,
) -> Response {
    let key_value = key.0.clone();
    let request = idempotent(&state, &caller, key, &uri, &raw);
    idempotency::run(request, |claim| {
        refunds::create_refund(&state, &caller, &id, value, key_value, claim)
    })
    .await
}

async fn list_refunds(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<ListRefundsQuery>,
) -> Result<Json<Page<RefundOut>>> {
    Ok(Json(
        refunds::list_refunds(&state.db, &caller, &id, query).await?,
    ))
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
