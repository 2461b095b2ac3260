//! `/internal/v1/payments/{id}/refunds`.

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use shared::Problem;
use shared::api::{RefundIn, RefundOut};

use super::model::RefundError;
use super::service::{ListRefundsQuery, RefundPayment};
use crate::AppState;
use crate::payments::routes::{payment_id, provider_problem, unavailable_problem};
use crate::platform::Actor;
use crate::platform::http::caller::allow;
use crate::platform::http::error::{Error, Result};
use crate::platform::http::extract::{IdempotencyKey, Json as Body, Query};
use crate::platform::http::{idempotency, idempotent};
use crate::platform::pagination::Page;

pub fn router() -> Router<AppState> {
    Router::new().route("/payments/{id}/refunds", post(refund).get(list))
}

impl From<RefundError> for Error {
    fn from(e: RefundError) -> Self {
        match e {
            RefundError::Invalid(errors) => Problem::validation(errors).into(),
            RefundError::Payment(e) => e.into(),
            RefundError::NotRefundable(status) => Problem::conflict(
                "payment_not_refundable",
                format!("The payment is {status}; only a succeeded payment can be refunded"),
            )
            .into(),
            RefundError::FullyRefunded => Problem::conflict(
                "payment_fully_refunded",
                "Nothing remains to refund: the payment is refunded in full, or pending refunds \
                 hold the rest",
            )
            .into(),
            RefundError::ExceedsRemaining { remaining, asked } => Problem::unprocessable(
                "refund_exceeds_remaining",
                format!("At most {remaining} can still be refunded; {asked} was asked"),
            )
            .into(),
            RefundError::Refused {
                refund_id,
                code,
                message,
            } => Problem::unprocessable(
                "refund_refused",
                format!("The payment provider refused refund {refund_id}: {message} ({code})"),
            )
            .into(),
            RefundError::OutcomeUnknown(refund_id) => unavailable_problem(format!(
                "Refund {refund_id} is pending: the provider did not answer. Retry with the same \
                 Idempotency-Key, or let the background sweep settle it"
            ))
            .into(),
            RefundError::Provider(e) => provider_problem(e),
            RefundError::Fault(fault) => fault.into(),
        }
    }
}

async fn refund(
    State(state): State<AppState>,
    actor: Actor,
    key: IdempotencyKey,
    uri: Uri,
    Path(payment_id_text): Path<String>,
    Body { value, raw }: Body<RefundIn>,
) -> Response {
    let key_value = key.0.clone();
    let request = idempotent(&state, &actor, key, &uri, &raw);
    let (state, actor) = (&state, &actor);
    idempotency::run(request, |then| async move {
        allow(actor.is_admin(), "Refunds need the admin role")?;
        let command = RefundPayment {
            payment_id: payment_id(payment_id_text)?,
            input: value,
            key: key_value,
        };
        Ok(state.refunds.create_refund(actor, command, &then).await?)
    })
    .await
}

async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Query(query): Query<ListRefundsQuery>,
) -> Result<Json<Page<RefundOut>>> {
    let id = payment_id(id)?;
    Ok(Json(state.refunds.list_refunds(&actor, &id, query).await?))
}
