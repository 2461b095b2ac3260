//! The transactional outbox. An event is inserted with the same transaction as the change that
//! caused it; the outputs derive what they will send from it in that transaction, and the
//! reactions of other contexts make their part of the change, so either all is committed or
//! none. Commit with [`Outbox::commit`] so the outputs start at once.
//!
//! An event is logged ("event recorded") once its transaction has committed, never before:
//! the events a task records are kept in [`in_scope`]'s task-local list until the commit
//! logs them; a new write transaction forgets what an abandoned one recorded.

use std::cell::RefCell;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QuerySelect, Set,
};

use super::catalogue::{Event, EventType};
use super::entities::events;
use super::relay::{Output, Reaction, Recorded};

/// Where events are recorded, with the outputs and reactions they feed.
#[derive(Clone, Default)]
pub struct Outbox {
    outputs: Arc<Vec<Arc<dyn Output>>>,
    reactions: Arc<Vec<Arc<dyn Reaction>>>,
}

impl Outbox {
    pub fn new(outputs: Vec<Arc<dyn Output>>, reactions: Vec<Arc<dyn Reaction>>) -> Outbox {
        Outbox {
            outputs: Arc::new(outputs),
            reactions: Arc::new(reactions),
        }
    }

    /// Records `event` in the transaction that made the change, and hands it to the outputs
    /// and the reactions there. Answers the event's id.
    pub async fn record(
        &self,
        txn: &DatabaseTransaction,
        event: Event<'_>,
        at: DateTime<Utc>,
    ) -> Result<String, DbErr> {
        let id = shared::ids::new_id(shared::ids::EVENT);
        let event_type = event.event_type();
        let data = event.data().map_err(|e| DbErr::Json(e.to_string()))?;
        let sequence = if event.opens_subject() {
            1
        } else {
            // The subject's row was changed first in this transaction, so another change of
            // it waits for this one to commit, and then finds this event's sequence.
            let last: Option<Option<i64>> = events::Entity::find()
                .select_only()
                .column_as(events::Column::Sequence.max(), "last")
                .filter(events::Column::SubjectId.eq(event.subject_id()))
                .into_tuple()
                .one(txn)
                .await?;
            last.flatten().unwrap_or(0) + 1
        };
        events::ActiveModel {
            id: Set(id.clone()),
            event_type: Set(event_type.as_str().to_owned()),
            subject_id: Set(event.subject_id().to_owned()),
            data: Set(data),
            created_at: Set(at),
            sequence: Set(sequence),
            causation_id: Set(CAUSE.try_with(Clone::clone).ok()),
            correlation_id: Set(CORRELATION.try_with(Clone::clone).ok()),
        }
        .insert(txn)
        .await?;
        let recorded = Recorded { id: &id, at, event };
        for output in self.outputs.iter() {
            output.take(txn, &recorded).await?;
        }
        for reaction in self.reactions.iter() {
            reaction.react(txn, &recorded, self).await?;
        }
        let uncommitted = Uncommitted {
            id: id.clone(),
            event_type,
            subject_id: event.subject_id().to_owned(),
        };
        if UNCOMMITTED
            .try_with(|list| list.borrow_mut().push(uncommitted))
            .is_err()
        {
            tracing::debug!(event_id = %id, "event written outside a scope that logs it at commit");
        }
        Ok(id)
    }

    /// Commits a transaction that may have recorded events: they are logged, and the outputs
    /// start on them at once.
    pub async fn commit(&self, txn: DatabaseTransaction) -> Result<(), DbErr> {
        txn.commit().await?;
        self.committed();
        Ok(())
    }

    /// A transaction committed by other means (a batch of the webhook dispatcher's) may have
    /// recorded events: the same as [`commit`](Self::commit) after it.
    pub fn committed(&self) {
        // Outside a scope (a tool, a test) what was recorded is unknown: wake the outputs.
        if log_committed() != Some(0) {
            for output in self.outputs.iter() {
                output.committed();
            }
        }
    }
}

/// An event written in a transaction not yet committed.
struct Uncommitted {
    id: String,
    event_type: EventType,
    subject_id: String,
}

tokio::task_local! {
    static UNCOMMITTED: RefCell<Vec<Uncommitted>>;
    static CAUSE: String;
    static CORRELATION: String;
}

/// Runs `work` as caused by the inbound event `id`, in the flow `correlation`: the events it
/// records carry them as their `causation_id` and `correlation_id` (the CloudEvents
/// `causationid` and `correlationid` other services see).
pub async fn caused_by<F: std::future::Future>(
    id: String,
    correlation: String,
    work: F,
) -> F::Output {
    CAUSE.scope(id, CORRELATION.scope(correlation, work)).await
}

/// Runs `work` in the flow `correlation` (an API request's id).
pub async fn correlated<F: std::future::Future>(correlation: String, work: F) -> F::Output {
    CORRELATION.scope(correlation, work).await
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

/// The transaction committed: its events are logged. Answers how many, when known.
fn log_committed() -> Option<usize> {
    UNCOMMITTED
        .try_with(|list| {
            let mut list = list.borrow_mut();
            for e in list.iter() {
                tracing::info!(event_id = %e.id, event_type = e.event_type.as_str(),
                    subject_id = %e.subject_id, "event recorded");
            }
            let n = list.len();
            list.clear();
            n
        })
        .ok()
}
