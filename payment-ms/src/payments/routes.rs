//! `/internal/v1/payments` and an order's checkout.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use shared::Problem;
use shared::api::{CheckoutIn, PaymentOut};

use super::model::{PaymentError, PaymentId};
use super::service::ListPaymentsQuery;
use crate::AppState;
use crate::orders::routes::order_id;
use crate::platform::Actor;
use crate::platform::http::error::{Error, Result};
use crate::platform::http::extract::{IdempotencyKey, Json as Body, Query};
use crate::platform::http::{idempotency, idempotent};
use crate::platform::pagination::Page;
use crate::providers::ProviderError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders/{id}/checkout", post(checkout))
        .route("/payments", get(list))
        .route("/payments/{id}", get(read))
        .route("/payments/{id}/verify", post(verify))
        .route("/payments/{id}/cancel", post(cancel))
}

impl From<PaymentError> for Error {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::Invalid(errors) => Problem::validation(errors).into(),
            PaymentError::NotFound(id) => Problem::not_found(format!("payment {id}")).into(),
            PaymentError::Order(e) => e.into(),
            PaymentError::NotOwner => {
                Problem::forbidden("Only the order's owner can check it out").into()
            }
            PaymentError::JustPaid(payment_id) => Problem::conflict(
                "order_not_payable",
                format!("The order was just paid by payment {payment_id}"),
            )
            .into(),
            PaymentError::NotCancelable(detail) => {
                Problem::conflict("payment_not_cancelable", detail).into()
            }
            PaymentError::OutOfStock(detail) => Problem::conflict("out_of_stock", detail).into(),
            PaymentError::InventoryUnavailable(detail) => {
                crate::platform::http::error::dependency_unavailable(detail).into()
            }
            PaymentError::Provider(e) => provider_problem(e),
            PaymentError::Fault(fault) => fault.into(),
        }
    }
}

/// The payment id in a path: another shape names no payment.
pub fn payment_id(raw: String) -> Result<PaymentId, PaymentError> {
    PaymentId::parse(&raw).ok_or(PaymentError::NotFound(raw))
}

/// The answer to a provider's failure: its refusal (422), or a 502 to retry.
pub fn provider_problem(err: ProviderError) -> Error {
    match err {
        ProviderError::Db(e) => Error::Db(e),
        ProviderError::Rejected { code, message } => {
            tracing::info!(%code, %message, "payment provider refused a request");
            Problem::unprocessable(
                "provider_rejected",
                format!("The payment provider refused: {message} ({code})"),
            )
            .into()
        }
        ProviderError::Unsupported(what) => {
            Problem::unprocessable("provider_unsupported", what).into()
        }
        ProviderError::Unavailable(reason) => {
            tracing::warn!(%reason, "payment provider unavailable");
            unavailable_problem("The payment provider did not answer as expected; retry later")
                .into()
        }
    }
}

/// The 502 a caller gets when the payment provider did not answer.
pub fn unavailable_problem(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "provider_unavailable",
        "Payment provider unavailable",
        detail,
    )
}

async fn checkout(
    State(state): State<AppState>,
    actor: Actor,
    key: IdempotencyKey,
    uri: Uri,
    Path(id): Path<String>,
    Body { value, raw }: Body<CheckoutIn>,
) -> Response {
    let request = idempotent(&state, &actor, key, &uri, &raw);
    let (state, actor) = (&state, &actor);
    idempotency::run(request, |then| async move {
        let id = order_id(id)?;
        Ok(state.payments.checkout(actor, &id, value, &then).await?)
    })
    .await
}

async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<ListPaymentsQuery>,
) -> Result<Json<Page<PaymentOut>>> {
    Ok(Json(state.payments.list_payments(&actor, query).await?))
}

async fn read(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<PaymentOut>> {
    let id = payment_id(id)?;
    Ok(Json(state.payments.get_payment(&actor, &id).await?))
}

async fn verify(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<PaymentOut>> {
    let id = payment_id(id)?;
    Ok(Json(state.payments.verify_payment(&actor, &id).await?))
}

async fn cancel(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<PaymentOut>> {
    let id = payment_id(id)?;
    Ok(Json(state.payments.cancel_payment(&actor, &id).await?))
}
