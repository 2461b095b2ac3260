//! The billing clock's job rows: scheduled (unique by kind, subject and due time), claimed
//! under a lease, marked done or failed.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, Statement, TransactionTrait,
};
use shared::ids;

use super::entities::billing_jobs;
use crate::platform::db::numbered;

pub const PENDING: &str = "pending";
pub const DONE: &str = "done";

/// A job to run at `due`; scheduling the same (kind, subject, due) again changes nothing.
pub async fn schedule<C: ConnectionTrait>(
    txn: &C,
    kind: &str,
    subject_id: &str,
    due: DateTime<Utc>,
    test_clock_id: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let job = Due {
        kind,
        subject_id,
        due,
        test_clock_id,
    };
    schedule_all(txn, &[job], at).await
}

/// A job to schedule.
pub struct Due<'a> {
    pub kind: &'a str,
    pub subject_id: &'a str,
    pub due: DateTime<Utc>,
    pub test_clock_id: Option<&'a str>,
}

/// [`schedule`] for many, with a statement per few hundred.
pub async fn schedule_all<C: ConnectionTrait>(
    txn: &C,
    jobs: &[Due<'_>],
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let rows: Vec<billing_jobs::Model> = jobs.iter().map(|job| job_row(job, at)).collect();
    insert_jobs(txn, rows).await?;
    Ok(())
}

/// [`schedule_all`], except that the jobs due by `at` are claimed for the caller until
/// `lease_until`, as [`claim_jobs`] would claim them, and answered: a batch's follow-up work
/// (a renewal's finalization, a finalization's charge) runs as soon as the batch commits,
/// without waiting for a claim. They are new by construction (the subjects were made or
/// changed by this transaction); should one exist already, an error, so the transaction
/// changes nothing.
pub async fn schedule_claimed<C: ConnectionTrait>(
    txn: &C,
    jobs: &[Due<'_>],
    at: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<billing_jobs::Model>, DbErr> {
    let (due, later): (Vec<_>, Vec<_>) = jobs
        .iter()
        .map(|job| job_row(job, at))
        .partition(|row| row.due_at <= at);
    insert_jobs(txn, later).await?;
    let claimed: Vec<billing_jobs::Model> = due
        .into_iter()
        .map(|mut row| {
            row.lease_until = Some(lease_until);
            row.attempts = 1;
            row
        })
        .collect();
    if insert_jobs(txn, claimed.clone()).await? != claimed.len() as u64 {
        return Err(DbErr::Custom(
            "a follow-up billing job was scheduled already".to_owned(),
        ));
    }
    Ok(claimed)
}

fn job_row(job: &Due<'_>, at: DateTime<Utc>) -> billing_jobs::Model {
    billing_jobs::Model {
        id: ids::new_id(ids::BILLING_JOB),
        kind: job.kind.to_owned(),
        subject_id: job.subject_id.to_owned(),
        due_at: job.due,
        test_clock_id: job.test_clock_id.map(str::to_owned),
        status: PENDING.to_owned(),
        attempts: 0,
        lease_until: None,
        last_error: None,
        created_at: at,
        done_at: None,
        payment_id: None,
    }
}

/// Inserts job rows, those that exist already (by kind, subject and due time) left as they
/// are. Answers how many were inserted.
async fn insert_jobs<C: ConnectionTrait>(
    txn: &C,
    rows: Vec<billing_jobs::Model>,
) -> Result<u64, DbErr> {
    let mut inserted = 0;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk = rows
            .by_ref()
            .take(crate::events::outbox::CHUNK)
            .map(IntoActiveModel::into_active_model);
        inserted += billing_jobs::Entity::insert_many(chunk)
            .on_conflict(
                OnConflict::columns([
                    billing_jobs::Column::Kind,
                    billing_jobs::Column::SubjectId,
                    billing_jobs::Column::DueAt,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(inserted)
}

/// Claims up to `limit` pending jobs due at `at` for `lease_until` (on the real clock when
/// `clock` is `None`, else on that test clock), earliest first. On PostgreSQL `FOR UPDATE SKIP
/// LOCKED` lets replicas share the work; on SQLite the single writer serializes claims.
///
/// On PostgreSQL the claim walks the pending jobs' index in due order and stops at `limit`: its
/// transaction turns bitmap and sequential scans off, which a planner without statistics (a bill
/// run grows the table faster than autovacuum analyzes it) would otherwise choose, reading and
/// sorting every due job for each claim.
pub async fn claim_jobs(
    db: &sea_orm::DatabaseConnection,
    clock: Option<&str>,
    due_by: DateTime<Utc>,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<billing_jobs::Model>, DbErr> {
    let backend = db.get_database_backend();
    let postgres = backend == sea_orm::DatabaseBackend::Postgres;
    let clock_filter = if clock.is_some() {
        "test_clock_id = $5"
    } else {
        "test_clock_id IS NULL"
    };
    // On PostgreSQL the claimed ids are an array, each then found through the primary key (an
    // `IN (SELECT …)` may be planned as a scan of the whole table while it is not analyzed).
    let (open, lock, close) = if postgres {
        ("= ANY(ARRAY(", " FOR UPDATE SKIP LOCKED", "))")
    } else {
        ("IN (", "", ")")
    };
    let sql = format!(
        "UPDATE billing_jobs SET lease_until = $1, attempts = attempts + 1 \
         WHERE id {open}SELECT id FROM billing_jobs \
             WHERE status = '{PENDING}' AND due_at <= $2 AND {clock_filter} \
             AND (lease_until IS NULL OR lease_until <= $3) \
             ORDER BY due_at, id LIMIT $4{lock}{close} \
         RETURNING *"
    );
    let mut values: Vec<sea_orm::Value> = vec![
        lease_until.into(),
        due_by.into(),
        now.into(),
        (limit.min(i64::MAX as u64) as i64).into(),
    ];
    if let Some(clock) = clock {
        values.push(clock.into());
    }
    let txn = db.begin().await?;
    if postgres {
        txn.execute_unprepared("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off")
            .await?;
    }
    let mut jobs = billing_jobs::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            backend,
            numbered(backend, &sql),
            values,
        ))
        .all(&txn)
        .await?;
    txn.commit().await?;
    // RETURNING gives no order.
    jobs.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
    Ok(jobs)
}

/// The payment id a charge job uses, the same on every run of it, so a rerun after a crash
/// meets this attempt's charge at the provider rather than charging again: derived from the
/// job's id (jobs scheduled by earlier versions kept one in `payment_id`, and use it).
pub fn job_payment_id(job: &billing_jobs::Model) -> String {
    job.payment_id.clone().unwrap_or_else(|| {
        ids::derived(ids::PAYMENT, &job.id).unwrap_or_else(|| ids::new_id(ids::PAYMENT))
    })
}

/// The job ran: it never runs again.
pub async fn job_done<C: ConnectionTrait>(
    db: &C,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    jobs_done(db, &[id], at).await
}

/// [`job_done`] for many.
pub async fn jobs_done<C: ConnectionTrait>(
    db: &C,
    ids: &[&str],
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    for chunk in ids.chunks(crate::events::outbox::CHUNK) {
        billing_jobs::Entity::update_many()
            .col_expr(billing_jobs::Column::Status, DONE.into())
            .col_expr(billing_jobs::Column::DoneAt, Some(at).into())
            .col_expr(
                billing_jobs::Column::LeaseUntil,
                Option::<DateTime<Utc>>::None.into(),
            )
            .filter(billing_jobs::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// The job failed: it is tried again after `retry_at`.
pub async fn job_failed<C: ConnectionTrait>(
    db: &C,
    id: &str,
    error: &str,
    retry_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    billing_jobs::Entity::update_many()
        .col_expr(
            billing_jobs::Column::LastError,
            Some(error.to_owned()).into(),
        )
        .col_expr(billing_jobs::Column::LeaseUntil, Some(retry_at).into())
        .filter(billing_jobs::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// The next pending job of a test clock due by `until` and not held (by a runner, or until
/// its retry) at `now`, if any, without claiming it.
pub async fn next_job_of_clock<C: ConnectionTrait>(
    db: &C,
    clock: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<billing_jobs::Model>, DbErr> {
    use sea_orm::Condition;
    billing_jobs::Entity::find()
        .filter(billing_jobs::Column::TestClockId.eq(clock))
        .filter(billing_jobs::Column::Status.eq(PENDING))
        .filter(billing_jobs::Column::DueAt.lte(until))
        .filter(
            Condition::any()
                .add(billing_jobs::Column::LeaseUntil.is_null())
                .add(billing_jobs::Column::LeaseUntil.lte(now)),
        )
        .order_by_asc(billing_jobs::Column::DueAt)
        .order_by_asc(billing_jobs::Column::Id)
        .limit(1)
        .one(db)
        .await
}
