//! Billing's persistence: subscriptions and invoices, the number counters, the billed-period
//! guard; the job rows are in [`job_rows`](super::job_rows), re-exported here.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};
use shared::billing::InvoiceOut;
use shared::ids;

use super::entities::{billed_periods, invoice_lines, invoices, subscriptions};
pub use super::job_rows::{
    DONE, Due, PENDING, claim_jobs, job_done, job_failed, job_payment_id, jobs_done,
    next_job_of_clock, schedule, schedule_all, schedule_claimed,
};
use super::model::{InvoiceStatus, invoice_out};
use crate::platform::db::find_each;

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

pub use super::totals::save_subscription;

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
