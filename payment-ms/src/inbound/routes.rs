//! `POST /providers/{provider}/webhook`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use shared::Problem;

use super::service::{InboundFailure, Receipt};
use crate::AppState;
use crate::platform::http::error::{Error, Result};
use crate::providers::InboundError;

/// Provider events are small, but a few carry whole objects: more room than the API's bodies.
const WEBHOOK_BODY_LIMIT: usize = 256 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/providers/{provider}/webhook",
        post(receive).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)),
    )
}

/// Public: the provider's signature authenticates it, not the internal token.
async fn receive(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Receipt>> {
    let receipt = state
        .inbound
        .receive(&provider, &headers, &body)
        .await
        .map_err(|e| problem(e, &provider))?;
    Ok(Json(receipt))
}

fn problem(failure: InboundFailure, provider: &str) -> Error {
    match failure {
        InboundFailure::UnknownProvider(name) => {
            Problem::not_found(format!("provider {name}")).into()
        }
        InboundFailure::Refused(InboundError::Signature(reason)) => Problem::bad_request(
            "invalid_signature",
            format!("The webhook signature does not verify: {reason}"),
        )
        .into(),
        InboundFailure::Refused(InboundError::Body(reason)) => Problem::bad_request(
            "invalid_body",
            format!("The webhook body is not an event: {reason}"),
        )
        .into(),
        // Not a fault of ours to retry (a 5xx would be, for the sender and the alerts): this
        // endpoint does not exist here, as for an unknown provider.
        InboundFailure::Refused(InboundError::NotConfigured) => {
            Problem::not_found(format!("a webhook endpoint for provider {provider}")).into()
        }
        InboundFailure::InProgress => Problem::conflict(
            "event_in_progress",
            "A copy of this event is being handled; retry later",
        )
        .into(),
        InboundFailure::Payment(e) => e.into(),
        InboundFailure::Refund(e) => e.into(),
        InboundFailure::Fault(fault) => fault.into(),
    }
}
