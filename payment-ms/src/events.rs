//! The transactional outbox. An event is inserted with the same transaction as the change that
//! caused it, together with its deliveries to partners, so either all are committed or none;
//! the dispatcher sends them afterwards. Commit with [`crate::AppState::commit`] so the
//! dispatcher wakes at once.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};
use serde::Serialize;

use crate::entities::events;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    OrderCreated,
    OrderPaid,
    OrderCanceled,
    OrderExpired,
    OrderRefunded,
    PaymentCreated,
    PaymentSucceeded,
    PaymentFailed,
    PaymentCanceled,
    PaymentExpired,
    PaymentRefunded,
    PartnerDisabled,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::OrderCreated => "order.created",
            EventType::OrderPaid => "order.paid",
            EventType::OrderCanceled => "order.canceled",
            EventType::OrderExpired => "order.expired",
            EventType::OrderRefunded => "order.refunded",
            EventType::PaymentCreated => "payment.created",
            EventType::PaymentSucceeded => "payment.succeeded",
            EventType::PaymentFailed => "payment.failed",
            EventType::PaymentCanceled => "payment.canceled",
            EventType::PaymentExpired => "payment.expired",
            EventType::PaymentRefunded => "payment.refunded",
            EventType::PartnerDisabled => "partner.disabled",
        }
    }
}

/// Records one event about `subject_id` (an order or payment id) with a snapshot of it as
/// `data`. Call it inside the transaction that made the change.
pub async fn record<C, T>(
    txn: &C,
    event_type: EventType,
    subject_id: &str,
    data: &T,
    at: DateTime<Utc>,
) -> Result<String, DbErr>
where
    C: ConnectionTrait,
    T: Serialize,
{
    let id = shared::ids::new_id(shared::ids::EVENT);
    let data = serde_json::to_value(data).map_err(|e| DbErr::Json(e.to_string()))?;
    events::ActiveModel {
        id: Set(id.clone()),
        event_type: Set(event_type.as_str().to_owned()),
        subject_id: Set(subject_id.to_owned()),
        data: Set(data),
        created_at: Set(at),
    }
    .insert(txn)
    .await?;
    crate::webhooks::fan_out(txn, &id, event_type.as_str(), at).await?;
    tracing::info!(event_id = %id, event_type = event_type.as_str(), subject_id, "event recorded");
    Ok(id)
}
