//! Billing's persistence: subscriptions and invoices, the number counters, the billed-period
//! guard and the job rows.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use shared::billing::InvoiceOut;
use shared::ids;

use super::entities::{billed_periods, billing_jobs, invoice_lines, invoices, subscriptions};
use super::model::{InvoiceStatus, invoice_out};
use crate::platform::db::{find_each, numbered};

pub const PENDING: &str = "pending";
pub const DONE: &str = "done";

/// The subscription, locked for the rest of the transaction (a row lock on PostgreSQL; the
/// write transaction itself on SQLite).
pub async fn lock_subscription<C: ConnectionTrait>(
    txn: &C,
    id: &str,
) -> Result<Option<subscriptions::Model>, DbErr> {
    subscriptions::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await
}

/// The subscriptions of `ids`, locked in their ids' order (as every batch locks them, so two
/// batches never wait on each other in a circle), by id.
pub async fn lock_subscriptions<'a, C: ConnectionTrait>(
    txn: &C,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, subscriptions::Model>, DbErr> {
    let ids: Vec<&str> = ids.collect();
    let column = subscriptions::Column::Id;
    let rows = find_each::<subscriptions::Entity, _>(txn, column, &ids, true).await?;
    Ok(rows.into_iter().map(|s| (s.id.clone(), s)).collect())
}

pub async fn lock_invoice<C: ConnectionTrait>(
    txn: &C,
    id: &str,
) -> Result<Option<invoices::Model>, DbErr> {
    invoices::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await
}

pub async fn save_subscription<C: ConnectionTrait>(
    txn: &C,
    sub: &subscriptions::Model,
) -> Result<(), DbErr> {
    let mut row = sub.clone().into_active_model().reset_all();
    // Kept by the figures alone (see `figures::record_mrr`).
    row.mrr = sea_orm::ActiveValue::NotSet;
    subscriptions::Entity::update(row).exec(txn).await?;
    Ok(())
}

pub async fn save_invoice<C: ConnectionTrait>(
    txn: &C,
    invoice: &invoices::Model,
) -> Result<(), DbErr> {
    invoices::Entity::update(invoice.clone().into_active_model().reset_all())
        .exec(txn)
        .await?;
    Ok(())
}

pub async fn insert_invoice<C: ConnectionTrait>(
    txn: &C,
    invoice: &invoices::Model,
    lines: &[invoice_lines::Model],
) -> Result<(), DbErr> {
    insert_invoices(txn, std::slice::from_ref(invoice), lines).await
}

/// Inserts invoices and their lines (whichever invoice each belongs to), a statement per few
/// hundred rows.
pub async fn insert_invoices<C: ConnectionTrait>(
    txn: &C,
    new: &[invoices::Model],
    lines: &[invoice_lines::Model],
) -> Result<(), DbErr> {
    for chunk in new.chunks(crate::events::outbox::CHUNK) {
        invoices::Entity::insert_many(
            chunk
                .iter()
                .cloned()
                .map(IntoActiveModel::into_active_model),
        )
        .exec_without_returning(txn)
        .await?;
    }
    for chunk in lines.chunks(crate::events::outbox::CHUNK) {
        invoice_lines::Entity::insert_many(
            chunk
                .iter()
                .cloned()
                .map(IntoActiveModel::into_active_model),
        )
        .exec_without_returning(txn)
        .await?;
    }
    Ok(())
}

pub async fn lines_of<C: ConnectionTrait>(
    db: &C,
    invoice_id: &str,
) -> Result<Vec<invoice_lines::Model>, DbErr> {
    invoice_lines::Entity::find()
        .filter(invoice_lines::Column::InvoiceId.eq(invoice_id))
        .order_by_asc(invoice_lines::Column::Position)
        .all(db)
        .await
}

/// The lines of many invoices, by invoice, each one's in order.
pub async fn lines_of_all<'a, C: ConnectionTrait>(
    db: &C,
    invoice_ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, Vec<invoice_lines::Model>>, DbErr> {
    let ids: Vec<&str> = invoice_ids.collect();
    let column = invoice_lines::Column::InvoiceId;
    let mut found = find_each::<invoice_lines::Entity, _>(db, column, &ids, false).await?;
    found.sort_by_key(|l| l.position);
    let mut lines: HashMap<String, Vec<invoice_lines::Model>> = HashMap::new();
    for line in found {
        lines.entry(line.invoice_id.clone()).or_default().push(line);
    }
    Ok(lines)
}

pub async fn invoice_with_lines<C: ConnectionTrait>(
    db: &C,
    invoice: invoices::Model,
) -> Result<InvoiceOut, DbErr> {
    let lines = lines_of(db, &invoice.id).await?;
    Ok(invoice_out(invoice, lines))
}

/// The invoice a subscription waits on: its newest open one.
pub async fn latest_open_invoice<C: ConnectionTrait>(
    db: &C,
    subscription_id: &str,
) -> Result<Option<invoices::Model>, DbErr> {
    invoices::Entity::find()
        .filter(invoices::Column::SubscriptionId.eq(subscription_id))
        .filter(invoices::Column::Status.is_in([InvoiceStatus::Open, InvoiceStatus::Draft]))
        .order_by_desc(invoices::Column::Id)
        .one(db)
        .await
}

/// Open (and draft) invoices of a subscription.
pub async fn unpaid_invoices<C: ConnectionTrait>(
    db: &C,
    subscription_id: &str,
) -> Result<Vec<invoices::Model>, DbErr> {
    invoices::Entity::find()
        .filter(invoices::Column::SubscriptionId.eq(subscription_id))
        .filter(invoices::Column::Status.is_in([InvoiceStatus::Open, InvoiceStatus::Draft]))
        .order_by_asc(invoices::Column::Id)
        .all(db)
        .await
}

/// The invoice an order pays, if it pays one.
pub async fn invoice_of_order<C: ConnectionTrait>(
    db: &C,
    order_id: &str,
) -> Result<Option<invoices::Model>, DbErr> {
    invoices::Entity::find()
        .filter(invoices::Column::OrderId.eq(order_id))
        .one(db)
        .await
}

/// The invoices paid by `order_ids`, locked in their ids' order.
pub async fn lock_invoices_of_orders<'a, C: ConnectionTrait>(
    txn: &C,
    order_ids: impl Iterator<Item = &'a str>,
) -> Result<Vec<invoices::Model>, DbErr> {
    let ids: Vec<&str> = order_ids.collect();
    let column = invoices::Column::OrderId;
    let mut found = find_each::<invoices::Entity, _>(txn, column, &ids, true).await?;
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

/// Records that a period was billed; false when it already was (by another run of the job).
pub async fn mark_billed<C: ConnectionTrait>(
    txn: &C,
    subscription_id: &str,
    period: (DateTime<Utc>, DateTime<Utc>),
    kind: &str,
    invoice_id: &str,
) -> Result<bool, DbErr> {
    let billed = Billed {
        subscription_id,
        period,
        kind,
        invoice_id,
    };
    Ok(mark_all_billed(txn, &[billed]).await? == 1)
}

/// A period billed by an invoice.
pub struct Billed<'a> {
    pub subscription_id: &'a str,
    pub period: (DateTime<Utc>, DateTime<Utc>),
    pub kind: &'a str,
    pub invoice_id: &'a str,
}

/// [`mark_billed`] for many: answers how many were not billed before.
pub async fn mark_all_billed<C: ConnectionTrait>(
    txn: &C,
    billed: &[Billed<'_>],
) -> Result<u64, DbErr> {
    let mut inserted = 0;
    for chunk in billed.chunks(crate::events::outbox::CHUNK) {
        let rows = chunk.iter().map(|b| {
            billed_periods::Model {
                id: ids::new_id(ids::BILLED_PERIOD),
                subscription_id: b.subscription_id.to_owned(),
                period_start: b.period.0,
                period_end: b.period.1,
                kind: b.kind.to_owned(),
                invoice_id: b.invoice_id.to_owned(),
            }
            .into_active_model()
        });
        inserted += billed_periods::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    billed_periods::Column::SubscriptionId,
                    billed_periods::Column::PeriodStart,
                    billed_periods::Column::PeriodEnd,
                    billed_periods::Column::Kind,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(inserted)
}

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
