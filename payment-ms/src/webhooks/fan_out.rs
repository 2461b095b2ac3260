//! The outbox's partner-webhook output: every event recorded is fanned out, in its own
//! transaction, into one delivery per active partner whose filter matches; the dispatcher is
//! woken when they commit.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, Set,
};
use tokio::sync::Notify;

use super::entities::{deliveries, partners};
use super::{partner_wants, status};
use crate::events::{Output, Recorded};

pub struct FanOut {
    /// The dispatcher's wake-up.
    pub due: Arc<Notify>,
}

#[async_trait]
impl Output for FanOut {
    async fn take(&self, txn: &DatabaseTransaction, event: &Recorded<'_>) -> Result<(), DbErr> {
        fan_out(txn, event.id, event.event.event_type().as_str(), event.at).await?;
        Ok(())
    }

    fn committed(&self) {
        self.due.notify_one();
    }
}

/// Creates the deliveries of one event, inside the transaction that records the event.
pub async fn fan_out<C: ConnectionTrait>(
    txn: &C,
    event_id: &str,
    event_type: &str,
    at: DateTime<Utc>,
) -> Result<usize, DbErr> {
    let partners = partners::Entity::find()
        .filter(partners::Column::Active.eq(true))
        .all(txn)
        .await?;
    let mut count = 0;
    for partner in partners.iter().filter(|p| partner_wants(p, event_type)) {
        new_delivery(event_id, &partner.id, at).insert(txn).await?;
        count += 1;
    }
    Ok(count)
}

pub fn new_delivery(
    event_id: &str,
    partner_id: &str,
    at: DateTime<Utc>,
) -> deliveries::ActiveModel {
    deliveries::ActiveModel {
        id: Set(shared::ids::new_id(shared::ids::DELIVERY)),
        event_id: Set(event_id.to_owned()),
        partner_id: Set(partner_id.to_owned()),
        status: Set(status::PENDING.to_owned()),
        attempts: Set(0),
        round_start: Set(0),
        next_attempt_at: Set(at),
        locked_until: Set(None),
        last_status_code: Set(None),
        last_error: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
        completed_at: Set(None),
        unrecorded_claims: Set(0),
    }
}
