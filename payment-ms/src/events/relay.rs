//! The outbox's outputs, and the reactions of one context to another's events.
//!
//! An [`Output`] takes every event recorded, inside the transaction that records it, and
//! derives what it will send from it (the partner webhooks' fan-out writes one delivery per
//! partner that wants it): what it derives commits with the event or not at all, and it sends
//! after the commit, from its own rows. A [`Reaction`] is another context's part of the same
//! change (a payment succeeded, so its order is paid), in the same transaction, so the two
//! never disagree; the events a reaction records are relayed in turn.
//!
//! Both are given to the [`Outbox`](super::outbox::Outbox) where the service is put together,
//! so the outbox knows no consumer by name and no context imports the one it reacts to.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};

use super::catalogue::Event;
use super::outbox::Outbox;

/// An event as recorded: its id and time, and the event itself.
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    pub id: &'a str,
    pub at: DateTime<Utc>,
    pub event: Event<'a>,
}

#[async_trait]
pub trait Output: Send + Sync {
    /// Derives, in the events' transaction, what this output will send for each of them
    /// (one or a bill run's many, in few statements).
    async fn take(&self, txn: &DatabaseTransaction, events: &[Recorded<'_>]) -> Result<(), DbErr>;

    /// Called after a transaction that recorded events has committed.
    fn committed(&self) {}
}

#[async_trait]
pub trait Reaction: Send + Sync {
    /// Its part of the change, in the event's transaction; `outbox` records what it causes.
    async fn react(
        &self,
        txn: &DatabaseTransaction,
        event: &Recorded<'_>,
        outbox: &Outbox,
    ) -> Result<(), DbErr>;

    /// Its part of the changes of events recorded together (a bill run's), in their
    /// transaction: by default each one's [`react`](Self::react) in turn; a reaction on a bill
    /// run's path makes it set-based, with the same outcome.
    async fn react_all(
        &self,
        txn: &DatabaseTransaction,
        events: &[Recorded<'_>],
        outbox: &Outbox,
    ) -> Result<(), DbErr> {
        for event in events {
            self.react(txn, event, outbox).await?;
        }
        Ok(())
    }
}
