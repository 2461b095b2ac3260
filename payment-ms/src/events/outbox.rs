//! The transactional outbox. An event is inserted with the same transaction as the change that
//! caused it, together with its deliveries to partners, so either all are committed or none;
//! the dispatcher sends them afterwards. Commit with [`crate::AppState::commit`] so the
//! dispatcher wakes at once.
//!
//! An event is logged ("event recorded") once its transaction has committed, never before:
//! the events a task records are kept in [`in_scope`]'s task-local list until [`committed`]
//! logs them; a new write transaction forgets what an abandoned one recorded.

use std::cell::RefCell;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};
use serde::Serialize;

use crate::events::entities::events;

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
    let recorded = Recorded {
        id: id.clone(),
        event_type,
        subject_id: subject_id.to_owned(),
    };
    if UNCOMMITTED
        .try_with(|list| list.borrow_mut().push(recorded))
        .is_err()
    {
        tracing::debug!(event_id = %id, "event written outside a scope that logs it at commit");
    }
    Ok(id)
}

/// An event written in a transaction not yet committed.
struct Recorded {
    id: String,
    event_type: EventType,
    subject_id: String,
}

tokio::task_local! {
    static UNCOMMITTED: RefCell<Vec<Recorded>>;
}

/// Runs `work` with a list of its uncommitted events (each request, each round of periodic
/// work).
pub async fn in_scope<F: std::future::Future>(work: F) -> F::Output {
    UNCOMMITTED.scope(RefCell::new(Vec::new()), work).await
}

/// A write transaction begins: events of an earlier one that was never committed are not.
pub fn forget_uncommitted() {
    let _ = UNCOMMITTED.try_with(|list| list.borrow_mut().clear());
}

/// The transaction committed: its events are logged.
pub fn committed() {
    let _ = UNCOMMITTED.try_with(|list| {
        for e in list.borrow_mut().drain(..) {
            tracing::info!(event_id = %e.id, event_type = e.event_type.as_str(),
                subject_id = %e.subject_id, "event recorded");
        }
    });
}
