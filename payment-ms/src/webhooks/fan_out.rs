//! The outbox's partner-webhook output: every event recorded is fanned out, in its own
//! transaction, into one delivery per active partner whose filter matches (the partners read
//! once for all the events a transaction records together); the dispatcher is woken when they
//! commit.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set,
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
    async fn take(&self, txn: &DatabaseTransaction, events: &[Recorded<'_>]) -> Result<(), DbErr> {
        let partners = active_partners(txn).await?;
        let rows: Vec<deliveries::ActiveModel> = events
            .iter()
            .flat_map(|event| {
                let event_type = event.event.event_type().as_str();
                partners
                    .iter()
                    .filter(move |p| partner_wants(p, event_type))
                    .map(|p| new_delivery(event.id, &p.id, event.at))
            })
            .collect();
        for chunk in rows.chunks(crate::events::outbox::CHUNK) {
            deliveries::Entity::insert_many(chunk.iter().cloned())
                .exec_without_returning(txn)
                .await?;
        }
        Ok(())
    }

    fn committed(&self) {
        self.due.notify_one();
    }
}

async fn active_partners<C: ConnectionTrait>(txn: &C) -> Result<Vec<partners::Model>, DbErr> {
    partners::Entity::find()
        .filter(partners::Column::Active.eq(true))
        .all(txn)
        .await
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
