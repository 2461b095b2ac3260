//! The transactional outbox. An event is inserted with the same transaction as the change that
//! caused it; the outputs derive what they will send from it in that transaction, and the
//! reactions of other contexts make their part of the change, so either all is committed or
//! none. Commit with [`Outbox::commit`] so the outputs start at once.
//!
//! An event is logged ("event recorded") once its transaction has committed, never before:
//! the events a task records are kept in [`in_scope`]'s task-local list until the commit
//! logs them; a new write transaction forgets what an abandoned one recorded.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, Statement, Value};

use super::catalogue::{Event, EventType};
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
        let mut ids = self.record_all(txn, &[event], at).await?;
        ids.pop()
            .ok_or_else(|| DbErr::Custom("an event recorded without an id".to_owned()))
    }

    /// Records `events`, in their order, in one transaction with a few statements whatever
    /// their number (a bill run's): one read of their subjects' last sequences, one insert per
    /// chunk, the outputs once for all; then the reactions, each given them all. Answers their
    /// ids.
    pub async fn record_all(
        &self,
        txn: &DatabaseTransaction,
        events: &[Event<'_>],
        at: DateTime<Utc>,
    ) -> Result<Vec<String>, DbErr> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // The subjects' rows were changed first in this transaction, so another change of one
        // waits for this one to commit, and then finds these events' sequences.
        let followed: Vec<&str> = events
            .iter()
            .filter(|e| !e.opens_subject())
            .map(|e| e.subject_id())
            .collect();
        let mut last: HashMap<String, i64> = HashMap::new();
        for chunk in followed.chunks(CHUNK) {
            last.extend(last_sequences(txn, chunk).await?);
        }
        let cause = CAUSE.try_with(Clone::clone).ok();
        let correlation = CORRELATION.try_with(Clone::clone).ok();
        let ids: Vec<String> = events
            .iter()
            .map(|_| shared::ids::new_id(shared::ids::EVENT))
            .collect();
        let mut rows = Vec::with_capacity(events.len());
        for (id, event) in ids.iter().zip(events) {
            let subject = event.subject_id();
            let sequence = if event.opens_subject() {
                1
            } else {
                last.get(subject).copied().unwrap_or(0) + 1
            };
            last.insert(subject.to_owned(), sequence);
            rows.push([
                id.clone().into(),
                event.event_type().as_str().into(),
                subject.into(),
                event.data().map_err(|e| DbErr::Json(e.to_string()))?.into(),
                at.into(),
                sequence.into(),
                cause.clone().into(),
                correlation.clone().into(),
            ]);
        }
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            insert_events(txn, rows.by_ref().take(CHUNK).collect()).await?;
        }
        let recorded: Vec<Recorded<'_>> = ids
            .iter()
            .zip(events)
            .map(|(id, event)| Recorded {
                id,
                at,
                event: *event,
            })
            .collect();
        for output in self.outputs.iter() {
            output.take(txn, &recorded).await?;
        }
        for reaction in self.reactions.iter() {
            reaction.react_all(txn, &recorded, self).await?;
        }
        let _ = UNCOMMITTED.try_with(|list| {
            list.borrow_mut()
                .extend(recorded.iter().map(|r| Uncommitted {
                    id: r.id.to_owned(),
                    event_type: r.event.event_type(),
                    subject_id: r.event.subject_id().to_owned(),
                }))
        });
        Ok(ids)
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

/// Inserts events' rows (id, type, subject, data as JSON text, time, sequence, cause,
/// correlation) with one statement.
async fn insert_events(txn: &DatabaseTransaction, rows: Vec<[Value; 8]>) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    // The data is text: PostgreSQL casts it to `json` (checked, kept as written; migration
    // 20), SQLite keeps it as it is.
    let cast = backend == sea_orm::DatabaseBackend::Postgres;
    let marks: Vec<String> = (0..rows.len())
        .map(|r| {
            let n = r * 8;
            let data = if cast {
                format!("CAST(${} AS json)", n + 4)
            } else {
                format!("${}", n + 4)
            };
            format!(
                "(${}, ${}, ${}, {data}, ${}, ${}, ${}, ${})",
                n + 1,
                n + 2,
                n + 3,
                n + 5,
                n + 6,
                n + 7,
                n + 8
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO events (id, event_type, subject_id, data, created_at, sequence, \
         causation_id, correlation_id) VALUES {}",
        marks.join(", ")
    );
    let values: Vec<Value> = rows.into_iter().flatten().collect();
    txn.execute_raw(statement(backend, &sql, values)).await?;
    Ok(())
}

/// A statement written with `$1`, `$2`… parameters, as the backend numbers them (SQLite: `?1`,
/// `?2`…; the outbox imports nothing of the platform, whose `numbered` does the same).
fn statement(backend: sea_orm::DatabaseBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        sea_orm::DatabaseBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// The last sequence of each of `subjects` that has events: one probe of the (subject,
/// sequence) index per subject, in one statement. (An `IN` list with `GROUP BY` lets the
/// planner scan the whole table when its statistics are stale, as they are while a bill run
/// grows it.)
async fn last_sequences(
    txn: &DatabaseTransaction,
    subjects: &[&str],
) -> Result<Vec<(String, i64)>, DbErr> {
    if subjects.is_empty() {
        return Ok(Vec::new());
    }
    let backend = txn.get_database_backend();
    let marks: Vec<String> = (1..=subjects.len()).map(|n| format!("(${n})")).collect();
    let sql = format!(
        "SELECT v.column1 AS subject_id, \
         (SELECT MAX(e.sequence) FROM events e WHERE e.subject_id = v.column1) AS last \
         FROM (VALUES {}) AS v",
        marks.join(", ")
    );
    let values: Vec<Value> = subjects.iter().map(|s| (*s).into()).collect();
    let rows = txn.query_all_raw(statement(backend, &sql, values)).await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let last: Option<i64> = row.try_get("", "last")?;
        if let Some(last) = last {
            found.push((row.try_get("", "subject_id")?, last));
        }
    }
    Ok(found)
}

/// Rows per multi-row statement: well under the bind-parameter limits (PostgreSQL 65,535,
/// SQLite 32,766) for tables of a dozen columns.
pub const CHUNK: usize = 500;

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
