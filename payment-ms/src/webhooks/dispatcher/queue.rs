//! The delivery queue's statements: claiming due deliveries (leases), giving them back,
//! stopping or canceling them, and writing a batch of outcomes.
//!
//! On PostgreSQL a claim is `FOR UPDATE SKIP LOCKED`, so replicas never take the same delivery
//! at once; on SQLite the single writer serializes claims. Every outcome applies only to a
//! delivery still where it was claimed (its attempt count and status), so a batch never
//! overwrites what another worker or an operator did meanwhile.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, Statement, TransactionTrait, Value,
};

use super::super::status;
use crate::platform::db::after;
use crate::{webhooks::entities::deliveries, webhooks::entities::partners};

/// A delivery a worker holds the lease of.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub event_id: String,
    pub partner_id: String,
    pub attempts: i32,
    pub round_start: i32,
    /// Claims since its last recorded outcome, this one included.
    pub unrecorded_claims: i32,
}

/// Claims up to `limit` due deliveries for `lease`, oldest due first: of each partner at most
/// `quota`, or what `free` says it may still take (0: none), skipping the disabled partners and
/// the ones backed off until after `at`.
///
/// Each partner's due deliveries are read from its own range of an index (the pending ones by
/// partner and due time), at most its quota of them: a partner with a large backlog (stalled,
/// or backed off) costs a claim no more than one with a few.
pub async fn claim(
    db: &DatabaseConnection,
    at: DateTime<Utc>,
    lease: Duration,
    limit: usize,
    quota: usize,
    free: &[(String, usize)],
) -> Result<Vec<Claimed>, DbErr> {
    let backend = db.get_database_backend();
    let postgres = backend == DatabaseBackend::Postgres;
    let skip: Vec<&String> = free
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(id, _)| id)
        .collect();
    let partial: Vec<&(String, usize)> = free.iter().filter(|(_, n)| *n > 0).collect();
    let quota = quota as i64;
    let mut claim = Bound::new(
        backend,
        "UPDATE deliveries SET unrecorded_claims = unrecorded_claims + 1, locked_until = ",
    );
    claim.bind(after(at, lease).into());
    // The partners that may take less than the quota: `f(pid, free)`.
    let free_of = |claim: &mut Bound| {
        if partial.is_empty() {
            return;
        }
        claim.sql(" LEFT JOIN (");
        for (i, (id, n)) in partial.iter().enumerate() {
            claim.sql(if i == 0 {
                "SELECT "
            } else {
                " UNION ALL SELECT "
            });
            claim.bind(id.clone().into());
            claim.sql(" AS pid, ");
            claim.bind((*n as i64).into());
            claim.sql(" AS free");
        }
        claim.sql(") f ON f.pid = p.id");
    };
    // What partner `p` may take.
    let quota_of = |claim: &mut Bound| {
        if partial.is_empty() {
            claim.bind(quota.into());
        } else {
            claim.sql("COALESCE(f.free, ");
            claim.bind(quota.into());
            claim.sql(")");
        }
    };
    // Partner `p`'s due deliveries, oldest first, at most `limit` of them.
    let due = |claim: &mut Bound, columns: &str, limit: &dyn Fn(&mut Bound)| {
        claim.sql("SELECT ");
        claim.sql(columns);
        claim.sql(" FROM deliveries d ");
        if !postgres {
            // SQLite's planner prefers the (status, due time) index, which reads every due
            // delivery of every partner: the backlog of a stalled partner on each claim.
            claim.sql("INDEXED BY idx_deliveries_pending_partner_due ");
        }
        claim.sql("WHERE d.partner_id = p.id AND d.status = 'pending' AND d.next_attempt_at <= ");
        claim.bind(at.into());
        claim.sql(" AND (d.locked_until IS NULL OR d.locked_until < ");
        claim.bind(at.into());
        claim.sql(") ORDER BY d.next_attempt_at LIMIT ");
        limit(claim);
    };
    // Which partners: active, not backed off, not at their room.
    let partners = |claim: &mut Bound| {
        claim.sql(" WHERE p.active AND (p.backoff_until IS NULL OR p.backoff_until <= ");
        claim.bind(at.into());
        claim.sql(")");
        if !skip.is_empty() {
            claim.sql(" AND p.id NOT IN ");
            claim.row(skip.iter().map(|id| (*id).clone().into()).collect());
        }
    };
    if postgres {
        // Each partner's range, locked as it is read: what another replica holds is skipped.
        claim.sql(" WHERE id IN (SELECT c.id FROM partners p");
        free_of(&mut claim);
        claim.sql(" CROSS JOIN LATERAL (");
        due(&mut claim, "d.id, d.next_attempt_at", &quota_of);
        claim.sql(" FOR UPDATE SKIP LOCKED) c");
        partners(&mut claim);
        claim.sql(" ORDER BY c.next_attempt_at LIMIT ");
    } else {
        // SQLite's single writer makes the statement atomic. A correlated LIMIT is not
        // allowed there, so each partner's range is read at the quota and cut to what it may
        // take by rank.
        claim.sql(
            " WHERE id IN (SELECT id FROM (SELECT c.id AS id, c.next_attempt_at AS due, \
             ROW_NUMBER() OVER (PARTITION BY p.id ORDER BY c.next_attempt_at) AS n, ",
        );
        quota_of(&mut claim);
        claim.sql(" AS free FROM partners p");
        free_of(&mut claim);
        claim.sql(" JOIN deliveries c ON c.id IN (");
        due(&mut claim, "d.id", &|claim: &mut Bound| {
            claim.bind(quota.into())
        });
        claim.sql(")");
        partners(&mut claim);
        claim.sql(") WHERE n <= free ORDER BY due LIMIT ");
    }
    claim.bind((limit as i64).into());
    claim.sql(") RETURNING id, event_id, partner_id, attempts, round_start, unrecorded_claims");
    let claim = claim.statement();
    let rows = if postgres {
        // A lease need not survive a crash of the database: lost, it only lets the delivery
        // be claimed again, and the attempt it led to is recorded durably. So the claim does
        // not wait for its WAL to reach the disk. And each partner's due deliveries are read
        // in the index's order, stopping at the limit: after a burst of events the table's
        // statistics lag, and the planner would otherwise read and sort every pending
        // delivery for each claim.
        let txn = db.begin().await?;
        txn.execute_unprepared(
            "SELECT set_config('synchronous_commit', 'off', true), \
             set_config('enable_bitmapscan', 'off', true)",
        )
        .await?;
        let rows = txn.query_all_raw(claim).await?;
        txn.commit().await?;
        rows
    } else {
        db.query_all_raw(claim).await?
    };
    rows.into_iter()
        .map(|row| {
            Ok(Claimed {
                id: row.try_get("", "id")?,
                event_id: row.try_get("", "event_id")?,
                partner_id: row.try_get("", "partner_id")?,
                attempts: row.try_get("", "attempts")?,
                round_start: row.try_get("", "round_start")?,
                unrecorded_claims: row.try_get("", "unrecorded_claims")?,
            })
        })
        .collect()
}

/// Ends the leases of deliveries claimed and not sent (given back at shutdown, or over a
/// partner's cap): they may be claimed again at once, and the claim does not count as one
/// whose outcome went unrecorded.
pub async fn release(db: &DatabaseConnection, ids: Vec<String>) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    deliveries::Entity::update_many()
        .col_expr(
            deliveries::Column::LockedUntil,
            Option::<DateTime<Utc>>::None.into(),
        )
        .col_expr(
            deliveries::Column::UnrecordedClaims,
            sea_orm::sea_query::Expr::col(deliveries::Column::UnrecordedClaims).sub(1),
        )
        .filter(deliveries::Column::Id.is_in(ids))
        .filter(deliveries::Column::Status.eq(status::PENDING))
        .exec(db)
        .await?;
    Ok(())
}

/// Ends claimed deliveries without sending them: `to` with `reason`, the lease released.
pub async fn end_unsent(
    db: &DatabaseConnection,
    ids: Vec<String>,
    to: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    deliveries::Entity::update_many()
        .col_expr(deliveries::Column::Status, to.into())
        .col_expr(
            deliveries::Column::LastError,
            Some(reason.to_owned()).into(),
        )
        .col_expr(
            deliveries::Column::LockedUntil,
            Option::<DateTime<Utc>>::None.into(),
        )
        .col_expr(deliveries::Column::UnrecordedClaims, 0.into())
        .col_expr(
            deliveries::Column::CompletedAt,
            (to != status::PENDING).then_some(at).into(),
        )
        .col_expr(deliveries::Column::UpdatedAt, at.into())
        .filter(deliveries::Column::Id.is_in(ids))
        .filter(deliveries::Column::Status.eq(status::PENDING))
        .exec(db)
        .await?;
    Ok(())
}

/// The new state of one claimed delivery after its attempt.
pub struct Outcome<'a> {
    pub claimed: &'a Claimed,
    pub attempt: i32,
    pub status: &'static str,
    pub status_code: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// One statement moving every delivery of the batch, each only from the state it was claimed
/// in; it returns the ids it moved. The expected status is a value of the batch, not a
/// constant, so the database finds each delivery by its key rather than by scanning the
/// pending ones.
pub fn update_deliveries(
    backend: DatabaseBackend,
    outcomes: &[Outcome],
    at: DateTime<Utc>,
) -> Statement {
    let mut q = Bound::new(
        backend,
        "WITH v (d_id, prev, was, att, st, code, err, next_at, done_at) AS (VALUES ",
    );
    q.rows(outcomes, |o| {
        vec![
            o.claimed.id.clone().into(),
            o.claimed.attempts.into(),
            status::PENDING.into(),
            o.attempt.into(),
            o.status.into(),
            o.status_code.into(),
            o.last_error.clone().into(),
            o.next_attempt_at.into(),
            o.completed_at.into(),
        ]
    });
    q.sql(
        ") UPDATE deliveries SET status = v.st, attempts = v.att, last_status_code = v.code, \
         last_error = v.err, locked_until = NULL, unrecorded_claims = 0, \
         next_attempt_at = COALESCE(v.next_at, deliveries.next_attempt_at), \
         completed_at = v.done_at, updated_at = ",
    );
    q.bind(at.into());
    q.sql(
        " FROM v WHERE deliveries.id = v.d_id AND deliveries.attempts = v.prev \
         AND deliveries.status = v.was RETURNING deliveries.id",
    );
    q.statement()
}

/// One statement counting, on deliveries that left `pending` while their attempt was in flight
/// (canceled with their partner), the attempt that was made: its number, answer and error, and
/// the claim released; the status stays. A delivery whose count moved on (another worker
/// recorded this attempt) is left alone. It returns the ids it counted on.
pub fn count_late_attempts(
    backend: DatabaseBackend,
    late: &[&Outcome],
    at: DateTime<Utc>,
) -> Statement {
    let mut q = Bound::new(backend, "WITH v (d_id, prev, att, code, err) AS (VALUES ");
    q.rows(late, |o| {
        vec![
            o.claimed.id.clone().into(),
            o.claimed.attempts.into(),
            o.attempt.into(),
            o.status_code.into(),
            o.last_error.clone().into(),
        ]
    });
    q.sql(
        ") UPDATE deliveries SET attempts = v.att, last_status_code = v.code, \
         last_error = v.err, locked_until = NULL, unrecorded_claims = 0, updated_at = ",
    );
    q.bind(at.into());
    q.sql(
        " FROM v WHERE deliveries.id = v.d_id AND deliveries.attempts = v.prev \
         AND deliveries.status <> ",
    );
    q.bind(status::PENDING.into());
    q.sql(" RETURNING deliveries.id");
    q.statement()
}

/// One attempt for the attempt log.
pub struct AttemptRow<'a> {
    pub delivery_id: &'a str,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub latency_ms: i32,
    pub status_code: Option<i32>,
    pub excerpt: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// One statement recording the attempts; an attempt number already recorded (by a worker
/// whose lease ran out) is left as it is.
pub fn insert_attempts(backend: DatabaseBackend, rows: &[AttemptRow]) -> Statement {
    let mut q = Bound::new(
        backend,
        "INSERT INTO delivery_attempts (id, delivery_id, attempt, started_at, latency_ms, \
         status_code, response_excerpt, error) VALUES ",
    );
    q.rows(rows, |a| {
        vec![
            shared::ids::new_id(shared::ids::DELIVERY_ATTEMPT).into(),
            a.delivery_id.into(),
            a.attempt.into(),
            a.started_at.into(),
            a.latency_ms.into(),
            a.status_code.into(),
            a.excerpt.map(str::to_owned).into(),
            a.error.map(str::to_owned).into(),
        ]
    });
    q.sql(" ON CONFLICT (delivery_id, attempt) DO NOTHING");
    q.statement()
}

/// Counts `n` more attempts in a row that struggled against a partner; returns the new count.
pub async fn add_failing<C: ConnectionTrait>(
    txn: &C,
    partner_id: &str,
    n: i32,
) -> Result<i32, DbErr> {
    let backend = txn.get_database_backend();
    let mut q = Bound::new(
        backend,
        "UPDATE partners SET failing_attempts = failing_attempts + ",
    );
    q.bind(n.into());
    q.sql(" WHERE id = ");
    q.bind(partner_id.into());
    q.sql(" RETURNING failing_attempts");
    let row = txn.query_one_raw(q.statement()).await?;
    Ok(match row {
        Some(row) => row.try_get("", "failing_attempts")?,
        None => 0,
    })
}

/// Sets a partner's count of struggling attempts and its back-off (`None`: none).
pub async fn set_health<C: ConnectionTrait>(
    txn: &C,
    partner_id: &str,
    failing: i32,
    backoff_until: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    partners::Entity::update_many()
        .col_expr(partners::Column::FailingAttempts, failing.into())
        .col_expr(partners::Column::BackoffUntil, backoff_until.into())
        .filter(partners::Column::Id.eq(partner_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// The ids a statement's `RETURNING id` gave.
pub async fn returned_ids<C: ConnectionTrait>(
    txn: &C,
    statement: Statement,
) -> Result<HashSet<String>, DbErr> {
    txn.query_all_raw(statement)
        .await?
        .into_iter()
        .map(|row| row.try_get::<String>("", "id"))
        .collect()
}

/// Placeholders and their values, in the order they appear in the text.
struct Bound {
    backend: DatabaseBackend,
    sql: String,
    values: Vec<Value>,
}

impl Bound {
    fn new(backend: DatabaseBackend, sql: &str) -> Bound {
        Bound {
            backend,
            sql: sql.to_owned(),
            values: Vec::new(),
        }
    }

    fn sql(&mut self, text: &str) {
        self.sql.push_str(text);
    }

    /// Appends `(…), (…), …`: one row of values for each item.
    fn rows<T>(&mut self, items: impl IntoIterator<Item = T>, values: impl Fn(T) -> Vec<Value>) {
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.sql(", ");
            }
            self.row(values(item));
        }
    }

    /// Appends `(?, ?, …)` for the values of one row.
    fn row(&mut self, values: Vec<Value>) {
        self.sql.push('(');
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.bind(value);
        }
        self.sql.push(')');
    }

    fn bind(&mut self, value: Value) {
        self.values.push(value);
        match self.backend {
            DatabaseBackend::Postgres => {
                self.sql.push('$');
                self.sql.push_str(&self.values.len().to_string());
            }
            _ => self.sql.push('?'),
        }
    }

    fn statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.sql, self.values)
    }
}

/// How many deliveries are pending, and how many of them are due at `at`.
pub async fn depth(db: &DatabaseConnection, at: DateTime<Utc>) -> Result<(u64, u64), DbErr> {
    use sea_orm::{EntityTrait, PaginatorTrait, QueryFilter};
    let pending = deliveries::Entity::find()
        .filter(deliveries::Column::Status.eq(status::PENDING))
        .count(db)
        .await?;
    let due = deliveries::Entity::find()
        .filter(deliveries::Column::Status.eq(status::PENDING))
        .filter(deliveries::Column::NextAttemptAt.lte(at))
        .count(db)
        .await?;
    Ok((pending, due))
}
