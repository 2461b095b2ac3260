//! The running totals the billing figures read (`mrr_days`, `subscription_counts`), kept in
//! the transactions that change what they count, so that each figure reads a few rows per day
//! (or per status and plan) rather than every change or subscription. The payments keep
//! revenue's (`payments::revenue`). A world is a test clock's id, or `''` for the real one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QuerySelect,
};

use super::entities::subscriptions;
use crate::platform::db::add_totals;

/// The world a subscription lives in, as the totals name it.
pub fn world_of(test_clock_id: Option<&str>) -> &str {
    test_clock_id.unwrap_or("")
}

/// The UTC day of `at`, as the totals' `day` column holds it.
pub fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
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
    let mut days: BTreeMap<(&str, String, &str, &str), [i64; 2]> = BTreeMap::new();
    for c in changes {
        let total = days
            .entry((c.world, day_of(c.at), c.currency, c.kind))
            .or_default();
        total[0] = total[0].saturating_add(c.delta);
        total[1] += 1;
    }
    let rows = days
        .into_iter()
        .map(|((world, day, currency, kind), [delta, changes])| {
            vec![
                world.into(),
                day.into(),
                currency.into(),
                kind.into(),
                delta.into(),
                changes.into(),
            ]
        })
        .collect();
    add_totals(
        db,
        "mrr_days",
        &["world", "day", "currency", "kind"],
        &["delta", "changes"],
        rows,
    )
    .await
}

/// Adds `by` subscriptions of a world, status and plan to the counts (`by` < 0 takes away).
#[derive(Debug, Clone, Copy)]
pub struct Counted<'a> {
    pub world: &'a str,
    pub status: &'a str,
    pub plan_id: &'a str,
    pub by: i64,
}

/// Moves subscriptions in the counts, one statement.
pub async fn count_subscriptions<C: ConnectionTrait>(
    db: &C,
    moves: &[Counted<'_>],
) -> Result<(), DbErr> {
    let mut counts: BTreeMap<(&str, &str, &str), i64> = BTreeMap::new();
    for m in moves {
        *counts.entry((m.world, m.status, m.plan_id)).or_default() += m.by;
    }
    let rows = counts
        .into_iter()
        .filter(|(_, by)| *by != 0)
        .map(|((world, status, plan_id), by)| {
            vec![world.into(), status.into(), plan_id.into(), by.into()]
        })
        .collect();
    add_totals(
        db,
        "subscription_counts",
        &["world", "status", "plan_id"],
        &["subscriptions"],
        rows,
    )
    .await
}

/// Saves a subscription's row (all but its MRR, which `figures::record_mrr` keeps), and moves
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
