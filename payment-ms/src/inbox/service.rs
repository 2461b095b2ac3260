//! The inbound pipeline both doors share (the JetStream consumer and `POST /api/v1/events`):
//! parse the CloudEvent, skip it if the inbox has it, run its handler, and record it in the
//! inbox in the transaction of the handler's (last) effect. A redelivered or re-posted event
//! finds its row and changes nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::api::INBOX_OUTCOMES;
use shared::{FieldError, ids};

use super::entities::inbox;
use super::envelope::{self, InboundEvent};
use super::handlers;
use super::store;
use crate::accounts::Accounts;
use crate::events::outbox;
use crate::payments::service::Payments;
use crate::platform::{Core, Fault};

/// Where an inbound event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Nats,
    Http,
}

impl Door {
    pub fn as_str(self) -> &'static str {
        match self {
            Door::Nats => "nats",
            Door::Http => "http",
        }
    }
}

/// What a handler did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It changed something here.
    Applied,
    /// Kept for a capability that acts on it later (billing).
    Recorded,
    /// A type this service has no use for: acknowledged and counted.
    Ignored,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => INBOX_OUTCOMES[0],
            Outcome::Recorded => INBOX_OUTCOMES[1],
            Outcome::Ignored => INBOX_OUTCOMES[2],
        }
    }
}

/// An event received: its inbox row, and whether it was there before.
#[derive(Debug, Clone)]
pub struct Received {
    pub entry: inbox::Model,
    pub duplicate: bool,
}

/// Why an event was not handled.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// Malformed: retrying cannot help. Nothing is recorded.
    #[error("invalid event: {}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// Something it depends on is unavailable now (a provider): retry later.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<sea_orm::DbErr> for InboxError {
    fn from(e: sea_orm::DbErr) -> Self {
        InboxError::Fault(e.into())
    }
}

impl InboxError {
    /// Whether another delivery could succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, InboxError::Invalid(_))
    }
}

fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| {
            if e.field.is_empty() {
                e.message.clone()
            } else {
                format!("{} {}", e.field, e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The inbox, with what its handlers need.
#[derive(Clone)]
pub struct Inbox {
    pub core: Core,
    /// Acts on the events for billing (wallets, upgrades, deleted users).
    pub billing: crate::billing::Billing,
    pub payments: Payments,
    pub accounts: Arc<dyn Accounts>,
    pub order_ttl: Duration,
}

impl Inbox {
    /// Receives an event as sent (a NATS message's payload, a request body).
    pub async fn receive(&self, body: &[u8], door: Door) -> Result<Received, InboxError> {
        let event = match envelope::parse(body) {
            Ok(event) => event,
            Err(errors) => {
                count(door, "invalid");
                return Err(InboxError::Invalid(errors));
            }
        };
        let received = self.handle(event, door).await;
        count(
            door,
            match &received {
                Ok(r) if r.duplicate => "duplicate",
                Ok(r) => INBOX_OUTCOMES
                    .into_iter()
                    .find(|o| *o == r.entry.outcome)
                    .unwrap_or("ignored"),
                Err(e) if e.is_permanent() => "invalid",
                Err(_) => "failed",
            },
        );
        received
    }

    async fn handle(&self, event: InboundEvent, door: Door) -> Result<Received, InboxError> {
        if let Some(entry) = store::find(&self.core.db, &event.source, &event.id).await? {
            return Ok(Received {
                entry,
                duplicate: true,
            });
        }
        let cause = event.id.clone();
        let flow = event.correlation.clone();
        let recorded = outbox::caused_by(cause, flow, handlers::handle(self, &event, door)).await?;
        if let Some(entry) = recorded {
            tracing::info!(source = %event.source, event_id = %event.id,
                event_type = %event.event_type, outcome = %entry.outcome, door = door.as_str(),
                "inbound event handled");
            return Ok(Received {
                entry,
                duplicate: false,
            });
        }
        // Another delivery of it recorded it first: its row is the answer.
        let entry = store::find(&self.core.db, &event.source, &event.id)
            .await?
            .ok_or_else(|| Fault::Internal(anyhow::anyhow!("inbox row missing after handling")))?;
        Ok(Received {
            entry,
            duplicate: true,
        })
    }
}

/// The inbox row of `event`, handled with `outcome`.
pub fn entry(
    event: &InboundEvent,
    door: Door,
    outcome: Outcome,
    detail: String,
    at: DateTime<Utc>,
) -> inbox::Model {
    inbox::Model {
        id: ids::new_id(ids::INBOX),
        source: event.source.clone(),
        message_id: event.id.clone(),
        event_type: event.event_type.clone(),
        door: door.as_str().to_owned(),
        outcome: outcome.as_str().to_owned(),
        detail,
        envelope: event.envelope.clone(),
        received_at: at,
    }
}

fn count(door: Door, outcome: &'static str) {
    metrics::counter!("inbox_events_total", "door" => door.as_str(), "outcome" => outcome)
        .increment(1);
}
