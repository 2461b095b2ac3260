//! Inbound provider webhooks (`POST /providers/{provider}/webhook`): public, authenticated by
//! the provider's signature instead of the internal token.
//!
//! A verified event is a trigger: the payment it names is refreshed from the provider (or its
//! refunds reconciled), through the same conditional updates as verify. So whichever of the
//! webhook and the buyer's verify comes first records the change and its events, once; a late,
//! repeated or out-of-order event cannot move a payment backwards. Handled event ids are kept,
//! and a replay is answered 200 without doing anything.

use axum::http::HeaderMap;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, Set};
use serde::Serialize;
use shared::Problem;

use crate::AppState;
use crate::db::now;
use crate::entities::{payments, provider_events};
use crate::error::Result;
use crate::payments::{PaymentStatus, refresh};
use crate::providers::{InboundError, Subject};

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Receipt {
    pub received: bool,
    /// The event was handled before; nothing was done.
    pub duplicate: bool,
}

pub async fn receive(
    state: &AppState,
    provider_name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Receipt> {
    let provider = state
        .providers
        .get(provider_name)
        .ok_or_else(|| Problem::not_found(format!("provider {provider_name}")))?;
    let event = provider
        .parse_webhook(headers, body, now())
        .map_err(|e| match e {
            InboundError::Signature(reason) => {
                tracing::warn!(provider = provider_name, %reason, "refused a provider webhook");
                Problem::bad_request(
                    "invalid_signature",
                    format!("The webhook signature does not verify: {reason}"),
                )
            }
            InboundError::Body(reason) => Problem::bad_request(
                "invalid_body",
                format!("The webhook body is not an event: {reason}"),
            ),
            InboundError::NotConfigured => Problem::service_unavailable(
                "webhook_not_configured",
                format!("Webhooks from {provider_name} are not configured (no signing secret)"),
            ),
        })?;
    let seen = provider_events::Entity::find_by_id((provider_name.to_owned(), event.id.clone()))
        .one(&state.db)
        .await?;
    if seen.is_some() {
        return Ok(Receipt {
            received: true,
            duplicate: true,
        });
    }
    match &event.subject {
        None => {}
        Some(Subject::Payment {
            payment_id,
            reference,
        }) => {
            if let Some(payment) =
                find(state, provider_name, payment_id.as_deref(), reference).await?
            {
                if payment.status == PaymentStatus::Pending.as_str() {
                    refresh(state, &payment, now()).await?;
                }
            } else {
                tracing::info!(event_id = %event.id, %reference, "provider event for no payment of ours");
            }
        }
        Some(Subject::Refunds {
            payment_id,
            payment_reference,
        }) => {
            if let Some(payment) = find(
                state,
                provider_name,
                payment_id.as_deref(),
                payment_reference,
            )
            .await?
            {
                crate::refunds::sync(state, &payment, now()).await?;
            }
        }
    }
    // Recorded once handled: a failure above leaves it unrecorded, and the provider's retry
    // is then handled in full.
    provider_events::Entity::insert(provider_events::ActiveModel {
        provider: Set(provider_name.to_owned()),
        event_id: Set(event.id.clone()),
        event_type: Set(event.event_type.chars().take(100).collect()),
        received_at: Set(now()),
    })
    .on_conflict(
        OnConflict::columns([
            provider_events::Column::Provider,
            provider_events::Column::EventId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(&state.db)
    .await?;
    tracing::info!(provider = provider_name, event_id = %event.id, event_type = %event.event_type,
        "provider webhook handled");
    Ok(Receipt {
        received: true,
        duplicate: false,
    })
}

/// Our payment named by an event: by our id (from the metadata we gave the provider), or by
/// the provider's references.
async fn find(
    state: &AppState,
    provider_name: &str,
    payment_id: Option<&str>,
    reference: &str,
) -> Result<Option<payments::Model>> {
    let by_reference = Condition::any()
        .add(payments::Column::ProviderReference.eq(reference))
        .add(payments::Column::ProviderPaymentReference.eq(reference));
    let mut condition = Condition::any().add(by_reference);
    if let Some(id) = payment_id.filter(|id| shared::ids::is_valid(shared::ids::PAYMENT, id)) {
        condition = condition.add(payments::Column::Id.eq(id));
    }
    Ok(payments::Entity::find()
        .filter(payments::Column::Provider.eq(provider_name))
        .filter(condition)
        .one(&state.db)
        .await?)
}
