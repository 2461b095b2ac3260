//! The running totals the billing figures read (`mrr_days`, `subscription_counts`), kept in
//! the transactions that change what they count, so that each figure reads a few rows per day
//! (or per status and plan) rather than every change or subscription, and the MRR changes
//! themselves (`subscription_mrr`, see `figures` for the kinds). The payments keep revenue's
//! (`payments::revenue`). A world is a test clock's id, or `''` for the real one.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QuerySelect, Statement,
};

use super::entities::{plans, subscriptions};
use super::figures::mrr;
use crate::platform::db::{add_totals, execute, numbered, utc_day};

/// The world a subscription lives in, as the totals name it.
pub fn world_of(test_clock_id: Option<&str>) -> &str {
    test_clock_id.unwrap_or("")
}

/// One change of a subscription's MRR (a `subscription_mrr` row).
#[derive(Debug, Clone, Copy)]
pub struct MrrChange<'a> {
    pub world: &'a str,
    pub at: DateTime<Utc>,
    pub currency: &'a str,
    pub kind: &'a str,
    pub delta: i64,
}

/// Adds MRR changes to their days' totals, one statement.
pub async fn add_mrr_changes<C: ConnectionTrait>(
    db: &C,
    changes: &[MrrChange<'_>],
) -> Result<(), DbErr> {
    let moves = changes.iter().map(|c| {
        let key = [c.world, &utc_day(c.at), c.currency, c.kind].map(str::to_owned);
        (key, [c.delta, 1])
    });
    let keys = ["world", "day", "currency", "kind"];
    add_totals(db, "mrr_days", keys, ["delta", "changes"], moves).await
}

/// Adds `by` subscriptions of a world, status and plan to the counts (`by` < 0 takes away).
#[derive(Debug, Clone, Copy)]
struct Counted<'a> {
    pub world: &'a str,
    pub status: &'a str,
    pub plan_id: &'a str,
    pub by: i64,
}

/// Moves subscriptions in the counts, one statement.
async fn count_subscriptions<C: ConnectionTrait>(
    db: &C,
    moves: &[Counted<'_>],
) -> Result<(), DbErr> {
    let moves = moves
        .iter()
        .map(|m| ([m.world, m.status, m.plan_id].map(str::to_owned), [m.by]));
    let keys = ["world", "status", "plan_id"];
    add_totals(db, "subscription_counts", keys, ["subscriptions"], moves).await
}

/// Saves a subscription's row (all but its MRR, which [`record_mrr`] keeps), and moves
/// it in the counts when its status or plan changed. The row is read locked first: what it
/// was is what the counts hold, whatever another transaction did before this one.
pub async fn save_subscription<C: ConnectionTrait>(
    txn: &C,
    sub: &subscriptions::Model,
) -> Result<(), DbErr> {
    let before = subscriptions::Entity::find_by_id(sub.id.as_str())
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("subscription {}", sub.id)))?;
    let mut row = sub.clone().into_active_model().reset_all();
    row.mrr = sea_orm::ActiveValue::NotSet;
    subscriptions::Entity::update(row).exec(txn).await?;
    if before.status != sub.status || before.plan_id != sub.plan_id {
        let world = world_of(before.test_clock_id.as_deref());
        count_subscriptions(
            txn,
            &[
                Counted {
                    world,
                    status: before.status.as_str(),
                    plan_id: &before.plan_id,
                    by: -1,
                },
                Counted {
                    world,
                    status: sub.status.as_str(),
                    plan_id: &sub.plan_id,
                    by: 1,
                },
            ],
        )
        .await?;
    }
    Ok(())
}

/// Counts new subscriptions (written by their creation).
pub async fn count_new<C: ConnectionTrait>(
    db: &C,
    subs: &[subscriptions::Model],
) -> Result<(), DbErr> {
    let moves: Vec<Counted<'_>> = subs
        .iter()
        .map(|s| Counted {
            world: world_of(s.test_clock_id.as_deref()),
            status: s.status.as_str(),
            plan_id: &s.plan_id,
            by: 1,
        })
        .collect();
    count_subscriptions(db, &moves).await
}

/// Records the subscription's MRR as it now is, if it changed: called with every subscription
/// event, in its transaction.
pub async fn record_mrr(
    txn: &DatabaseTransaction,
    sub: &subscriptions::Model,
    plan: &plans::Model,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let now = mrr(sub.status, plan);
    // As stored: the caller's copy may predate an earlier change in this transaction.
    let before = subscriptions::Entity::find_by_id(sub.id.as_str())
        .one(txn)
        .await?
        .map_or(0, |s| s.mrr);
    if now == before {
        return Ok(());
    }
    let backend = txn.get_database_backend();
    let seen_before = before > 0
        || txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                numbered(
                    backend,
                    "SELECT 1 AS one FROM subscription_mrr WHERE subscription_id = $1 LIMIT 1",
                ),
                [sub.id.as_str().into()],
            ))
            .await?
            .is_some();
    let kind = match (before, now) {
        (0, _) if seen_before => "reactivation",
        (0, _) => "new",
        (_, 0) => "churn",
        (before, after) if after > before => "expansion",
        _ => "contraction",
    };
    execute(
        txn,
        "INSERT INTO subscription_mrr (id, subscription_id, test_clock_id, currency, at, mrr, delta, kind) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [
            shared::ids::new_id(shared::ids::MRR_CHANGE).into(),
            sub.id.as_str().into(),
            sub.test_clock_id.clone().into(),
            plan.currency.as_str().into(),
            at.into(),
            now.into(),
            (now - before).into(),
            kind.into(),
        ],
    )
    .await?;
    let change = MrrChange {
        world: world_of(sub.test_clock_id.as_deref()),
        at,
        currency: &plan.currency,
        kind,
        delta: now - before,
    };
    add_mrr_changes(txn, &[change]).await?;
    subscriptions::Entity::update_many()
        .col_expr(subscriptions::Column::Mrr, now.into())
        .filter(subscriptions::Column::Id.eq(sub.id.as_str()))
        .exec(txn)
        .await?;
    Ok(())
}
