//! Each event's publication to NATS JetStream, kept in the database: the outbox's output for
//! other services, and the relay's queue.
//!
//! [`Publications`] writes a `pending` row in the transaction that records the event, so an
//! event is either committed with its publication or not at all. The relay claims due rows by
//! moving their `next_attempt_at` past a lease (on PostgreSQL `FOR UPDATE SKIP LOCKED`, so
//! replicas share the work; on SQLite the single writer serializes claims): a relay that dies
//! mid-publish leaves rows that come due again when the lease ends. A row is never deleted and
//! never dropped; it ends `published` with the stream's sequence.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, FromQueryResult, QueryFilter, Set, Statement, Value,
};
use tokio::sync::Notify;

use super::entities::event_publications;
use crate::clock::Clock;
use crate::events::entities::events;
use crate::events::{Output, Recorded};
use crate::platform::db::{after, execute, numbered};
use crate::platform::metrics::Gauges;

pub const PENDING: &str = "pending";
pub const PUBLISHED: &str = "published";

/// The outbox's output to NATS: a publication per event, and the relay woken on commit.
pub struct Publications {
    pub due: Arc<Notify>,
}

#[async_trait]
impl Output for Publications {
    async fn take(&self, txn: &DatabaseTransaction, events: &[Recorded<'_>]) -> Result<(), DbErr> {
        for chunk in events.chunks(crate::events::outbox::CHUNK) {
            let rows = chunk.iter().map(|event| event_publications::ActiveModel {
                event_id: Set(event.id.to_owned()),
                status: Set(PENDING.to_owned()),
                attempts: Set(0),
                next_attempt_at: Set(event.at),
                last_error: Set(None),
                stream_sequence: Set(None),
                created_at: Set(event.at),
                published_at: Set(None),
            });
            event_publications::Entity::insert_many(rows)
                .exec_without_returning(txn)
                .await?;
        }
        Ok(())
    }

    fn committed(&self) {
        self.due.notify_one();
    }
}

/// A publication a relay holds the lease of, with its event.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub event: events::Model,
    /// Claims so far, this one included.
    pub attempts: i32,
}

/// Claims up to `limit` due publications for `lease`, oldest first, with their events in the
/// order they were recorded. On PostgreSQL the claim and the read of the events are one
/// statement (a data-modifying `WITH`); SQLite reads the events after.
pub async fn claim(
    db: &DatabaseConnection,
    at: DateTime<Utc>,
    lease: Duration,
    limit: u64,
) -> Result<Vec<Claimed>, DbErr> {
    let backend = db.get_database_backend();
    let postgres = backend == DatabaseBackend::Postgres;
    let update = format!(
        "UPDATE event_publications SET next_attempt_at = $1, attempts = attempts + 1 \
         WHERE event_id IN (SELECT event_id FROM event_publications \
             WHERE status = '{PENDING}' AND next_attempt_at <= $2 \
             ORDER BY next_attempt_at, event_id LIMIT $3{}) \
         RETURNING event_id, attempts",
        if postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        }
    );
    let sql = if postgres {
        format!(
            "WITH claimed AS ({update}) SELECT events.*, claimed.attempts AS claim_attempts \
             FROM claimed JOIN events ON events.id = claimed.event_id"
        )
    } else {
        update
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            numbered(backend, &sql),
            [
                after(at, lease).into(),
                at.into(),
                (limit.min(i64::MAX as u64) as i64).into(),
            ],
        ))
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    if postgres {
        for row in rows {
            claimed.push(Claimed {
                attempts: row.try_get("", "claim_attempts")?,
                event: events::Model::from_query_result(&row, "")?,
            });
        }
    } else {
        let mut attempts = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("", "event_id")?;
            let n: i32 = row.try_get("", "attempts")?;
            attempts.insert(id, n);
        }
        if attempts.is_empty() {
            return Ok(Vec::new());
        }
        let found = events::Entity::find()
            .filter(events::Column::Id.is_in(attempts.keys().cloned()))
            .all(db)
            .await?;
        if found.len() < attempts.len() {
            tracing::error!(
                claimed = attempts.len(),
                found = found.len(),
                "publications without their event; they stay pending"
            );
        }
        claimed.extend(found.into_iter().map(|event| Claimed {
            attempts: attempts.get(&event.id).copied().unwrap_or(1),
            event,
        }));
    }
    claimed
        .sort_by(|a, b| (a.event.created_at, &a.event.id).cmp(&(b.event.created_at, &b.event.id)));
    Ok(claimed)
}

/// Marks publications acknowledged by the stream, with the sequence it gave each: one
/// statement per chunk of 100 (measured: a statement binding 400 rows took 50 ms to come back
/// from PostgreSQL on loopback, 100 rows 3 ms; the server itself spent under 5 ms on either), joined to the acknowledged `(id, sequence)` pairs by primary key.
/// (Marking one that another relay marked first writes the same: the stream answers a
/// duplicate with the first sequence.) The ids are also listed: with the join alone,
/// PostgreSQL's generic plan for the prepared statement scanned the whole table per chunk.
pub async fn published(
    db: &DatabaseConnection,
    acked: &[(String, u64)],
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    for chunk in acked.chunks(100) {
        let mut values: Vec<Value> = vec![at.into()];
        let mut rows = String::new();
        let mut ids = String::new();
        for (i, (id, sequence)) in chunk.iter().enumerate() {
            let n = values.len();
            if i > 0 {
                rows.push_str(", ");
                ids.push_str(", ");
            }
            rows.push_str(&format!("(${}, ${})", n + 1, n + 2));
            ids.push_str(&format!("${}", n + 1));
            values.push(id.clone().into());
            values.push((*sequence as i64).into());
        }
        let sql = format!(
            "WITH acked (id, seq) AS (VALUES {rows}) \
             UPDATE event_publications SET status = '{PUBLISHED}', published_at = $1, \
             last_error = NULL, stream_sequence = acked.seq \
             FROM acked WHERE event_publications.event_id = acked.id \
             AND event_publications.event_id IN ({ids})"
        );
        execute(db, &sql, values).await?;
    }
    Ok(())
}

/// Gives failed publications back, each due again after its retry delay.
pub async fn failed(
    db: &DatabaseConnection,
    failures: &[(String, Duration, String)],
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    // A batch that failed usually failed alike (NATS went away): one statement per delay and
    // error, 100 ids at most each.
    let mut alike: std::collections::BTreeMap<(Duration, &str), Vec<&str>> = Default::default();
    for (id, delay, error) in failures {
        alike.entry((*delay, error)).or_default().push(id);
    }
    for ((delay, error), ids) in alike {
        let error: String = error.chars().take(500).collect();
        for chunk in ids.chunks(100) {
            event_publications::Entity::update_many()
                .col_expr(
                    event_publications::Column::NextAttemptAt,
                    after(at, delay).into(),
                )
                .col_expr(
                    event_publications::Column::LastError,
                    Some(error.clone()).into(),
                )
                .filter(event_publications::Column::EventId.is_in(chunk.iter().copied()))
                .filter(event_publications::Column::Status.eq(PENDING))
                .exec(db)
                .await?;
        }
    }
    Ok(())
}

/// How many publications wait, and how long the oldest has waited.
pub async fn backlog<C: ConnectionTrait>(
    db: &C,
    at: DateTime<Utc>,
) -> Result<(i64, Duration), DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM event_publications \
                 WHERE status = '{PENDING}'"
            ),
        ))
        .await?;
    let Some(row) = row else {
        return Ok((0, Duration::ZERO));
    };
    let n: i64 = row.try_get("", "n")?;
    let oldest: Option<DateTime<Utc>> = row.try_get("", "oldest")?;
    let lag = oldest
        .and_then(|oldest| (at - oldest).to_std().ok())
        .unwrap_or_default();
    Ok((n, lag))
}

/// The relay's gauges, read from the database when `/metrics` is scraped: the same on every
/// replica.
pub struct RelayGauges {
    pub db: DatabaseConnection,
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
impl Gauges for RelayGauges {
    async fn refresh(&self) -> Result<(), DbErr> {
        let (pending, lag) = backlog(&self.db, self.clock.now()).await?;
        metrics::gauge!("events_relay_pending").set(pending as f64);
        metrics::gauge!("events_relay_lag_seconds").set(lag.as_secs_f64());
        Ok(())
    }
}
