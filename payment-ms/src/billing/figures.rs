//! Billing's figures (admin): revenue by day or month and currency (every succeeded payment,
//! invoices' and one-off orders' alike, net of settled refunds; from the daily totals the
//! payments keep, `payments::revenue`), MRR at any time and its
//! movements, subscriptions by status and plan, and churn. Computed in the database.
//!
//! MRR: an `active` or `past_due` subscription counts its plan's amount per month (a yearly
//! plan's amount / 12, a weekly one's × 52 / 12, a daily one's × 365 / 12, over
//! `interval_count`, rounded once, half away from zero); any other status counts 0. Every
//! change of that figure is a `subscription_mrr` row, written with the subscription event
//! that changed it: `new` (0 → x, the first time), `reactivation` (0 → x again), `expansion`,
//! `contraction`, `churn` (x → 0).

use chrono::{DateTime, Duration, NaiveTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, Statement,
};
use serde::{Deserialize, Serialize};
use shared::FieldError;

use super::entities::{plans, subscriptions};
use super::model::{BillingError, SubscriptionStatus, TestClockId};
use super::periods::Interval;
use super::totals::{MrrChange, add_mrr_changes, day_of, world_of};
use crate::platform::db::numbered;
use crate::platform::{Actor, validate};

/// A subscription's monthly recurring revenue under `plan` in `status`.
pub fn mrr(status: SubscriptionStatus, plan: &plans::Model) -> i64 {
    if !matches!(
        status,
        SubscriptionStatus::Active | SubscriptionStatus::PastDue
    ) {
        return 0;
    }
    let count = i128::from(plan.interval_count.max(1));
    let (per, months) = match Interval::parse(&plan.interval) {
        Some(Interval::Day) => (365, 12),
        Some(Interval::Week) => (52, 12),
        Some(Interval::Year) => (1, 12),
        _ => (1, 1),
    };
    let n = i128::from(plan.amount) * per;
    let d = months * count;
    let rounded = (n + d / 2) / d; // amounts are never negative
    i64::try_from(rounded).unwrap_or(i64::MAX)
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
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        numbered(
            backend,
            "INSERT INTO subscription_mrr (id, subscription_id, test_clock_id, currency, at, mrr, delta, kind) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        ),
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
    ))
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

#[derive(Debug, Deserialize)]
pub struct FiguresQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// `day` (default) or `month`: revenue's buckets.
    pub interval: Option<String>,
    /// A test clock's world instead of the real one (MRR and subscriptions).
    pub test_clock: Option<String>,
}

/// The window asked for, `[from, to)`, 30 days to now by default, at most `max_days` long,
/// as the whole UTC days the totals hold: the first (the one `from` falls in) and the last
/// (the one just before `to`), and the window they make.
struct Days {
    first: String,
    last: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

fn window(query: &FiguresQuery, now: DateTime<Utc>, max_days: i64) -> Result<Days, BillingError> {
    let to = query.to.unwrap_or(now);
    let from = query.from.unwrap_or(to - Duration::days(30));
    let mut errors = Vec::new();
    if from >= to {
        errors.push(FieldError::new("from", "must be before `to`"));
    } else if to - from > Duration::days(max_days) {
        errors.push(FieldError::new(
            "from",
            format!("the window is at most {max_days} days"),
        ));
    }
    validate::finish(errors).map_err(BillingError::Invalid)?;
    let first = from.date_naive();
    let last = (to - Duration::nanoseconds(1)).date_naive();
    let midnight = |d: chrono::NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
    Ok(Days {
        first: day_of(midnight(first)),
        last: day_of(midnight(last)),
        from: midnight(first),
        to: midnight(last + Duration::days(1)),
    })
}

fn admit(actor: &Actor) -> Result<(), BillingError> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(BillingError::Forbidden(
            "Billing figures are for the admin role".to_owned(),
        ))
    }
}

fn clock_of(query: &FiguresQuery) -> Result<Option<String>, BillingError> {
    match &query.test_clock {
        None => Ok(None),
        Some(id) => TestClockId::parse(id)
            .map(|c| Some(c.to_string()))
            .ok_or_else(|| BillingError::invalid("test_clock", "is not a test clock id")),
    }
}

#[derive(Debug, Serialize, FromQueryResult, PartialEq)]
pub struct RevenueRow {
    /// `2027-01-31` (day) or `2027-01` (month), UTC.
    pub period: String,
    pub currency: String,
    /// What succeeded payments took in.
    pub gross: i64,
    /// What settled refunds gave back.
    pub refunded: i64,
    pub net: i64,
    pub payments: i64,
}

#[derive(Debug, Serialize)]
pub struct Revenue {
    /// The whole UTC days counted, `[from, to)`: the window asked for, widened to its days.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub interval: String,
    pub data: Vec<RevenueRow>,
}

pub async fn revenue(
    core: &crate::platform::Core,
    actor: &Actor,
    query: FiguresQuery,
) -> Result<Revenue, BillingError> {
    admit(actor)?;
    let monthly = match query.interval.as_deref() {
        None | Some("day") => false,
        Some("month") => true,
        Some(_) => {
            return Err(BillingError::invalid(
                "interval",
                shared::problem::one_of(["day", "month"]),
            ));
        }
    };
    let days = window(&query, core.now(), if monthly { 3660 } else { 1100 })?;
    let backend = core.db.get_database_backend();
    let sql = format!(
        "SELECT substr(day, 1, {}) AS period, currency, CAST(SUM(gross) AS BIGINT) AS gross, \
             CAST(SUM(refunded) AS BIGINT) AS refunded, \
             CAST(SUM(gross) - SUM(refunded) AS BIGINT) AS net, \
             CAST(SUM(payments) AS BIGINT) AS payments \
         FROM revenue_days WHERE day >= $1 AND day <= $2 \
         GROUP BY substr(day, 1, {0}), currency ORDER BY period, currency",
        if monthly { 7 } else { 10 },
    );
    let data = RevenueRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        numbered(backend, &sql),
        [days.first.into(), days.last.into()],
    ))
    .all(&core.db)
    .await?;
    Ok(Revenue {
        from: days.from,
        to: days.to,
        interval: if monthly { "month" } else { "day" }.to_owned(),
        data,
    })
}

#[derive(Debug, Serialize, FromQueryResult, PartialEq)]
pub struct MrrRow {
    pub currency: String,
    pub mrr: i64,
    pub subscriptions: i64,
}

#[derive(Debug, Serialize, FromQueryResult, PartialEq)]
pub struct MovementRow {
    pub currency: String,
    /// `new`, `expansion`, `contraction`, `churn` or `reactivation`.
    pub kind: String,
    /// The MRR it added (negative: removed).
    pub amount: i64,
    pub subscriptions: i64,
}

#[derive(Debug, Serialize)]
pub struct Mrr {
    /// MRR at `to`, by currency.
    pub at: DateTime<Utc>,
    pub mrr: Vec<MrrRow>,
    /// Its movements over `[from, to)`.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub movements: Vec<MovementRow>,
}

/// Runs `sql` over the world asked for: `{world}` in it becomes the totals' world condition
/// (the clock's id, or `''` for the real world, as the parameter after `values`).
async fn in_world<T: FromQueryResult, C: ConnectionTrait>(
    db: &C,
    sql: &str,
    mut values: Vec<sea_orm::Value>,
    clock: &Option<String>,
) -> Result<Vec<T>, DbErr> {
    values.push(world_of(clock.as_deref()).into());
    let world = format!("world = ${}", values.len());
    let backend = db.get_database_backend();
    let sql = numbered(backend, &sql.replace("{world}", &world));
    T::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
        .all(db)
        .await
}

/// The time of the world asked for: its clock's, or now.
async fn now_in(
    core: &crate::platform::Core,
    clock: &Option<String>,
) -> Result<DateTime<Utc>, DbErr> {
    Ok(match clock {
        Some(id) => super::clocks::time_of(&core.db, id)
            .await?
            .unwrap_or_else(|| core.now()),
        None => core.now(),
    })
}

/// MRR at `to`: the sum of every change before it, and the subscriptions paying then (starts
/// less ends); and what moved in `[from, to)`. One pass over the changes' daily totals up to
/// `to`, per currency and kind: its cost grows with the days, not with the changes.
#[derive(Debug, FromQueryResult)]
struct KindRow {
    currency: String,
    kind: String,
    total: i64,
    count: i64,
    amount: i64,
    moved: i64,
}

pub async fn mrr_figures(
    core: &crate::platform::Core,
    actor: &Actor,
    query: FiguresQuery,
) -> Result<Mrr, BillingError> {
    admit(actor)?;
    let clock = clock_of(&query)?;
    let days = window(&query, now_in(core, &clock).await?, 3660)?;
    let (from, to) = (days.from, days.to);
    let rows: Vec<KindRow> = in_world(
        &core.db,
        "SELECT currency, kind, CAST(SUM(delta) AS BIGINT) AS total, \
             CAST(SUM(changes) AS BIGINT) AS count, \
             CAST(SUM(CASE WHEN day >= $1 THEN delta ELSE 0 END) AS BIGINT) AS amount, \
             CAST(SUM(CASE WHEN day >= $1 THEN changes ELSE 0 END) AS BIGINT) AS moved \
         FROM mrr_days WHERE {world} AND day <= $2 \
         GROUP BY currency, kind ORDER BY currency, kind",
        vec![days.first.into(), days.last.into()],
        &clock,
    )
    .await?;
    let mut mrr: Vec<MrrRow> = Vec::new();
    for row in &rows {
        let paying = match row.kind.as_str() {
            "new" | "reactivation" => row.count,
            "churn" => -row.count,
            _ => 0,
        };
        match mrr.last_mut() {
            Some(last) if last.currency == row.currency => {
                last.mrr += row.total;
                last.subscriptions += paying;
            }
            _ => mrr.push(MrrRow {
                currency: row.currency.clone(),
                mrr: row.total,
                subscriptions: paying,
            }),
        }
    }
    mrr.retain(|r| r.mrr != 0 || r.subscriptions != 0);
    let movements = rows
        .into_iter()
        .filter(|r| r.moved > 0)
        .map(|r| MovementRow {
            currency: r.currency,
            kind: r.kind,
            amount: r.amount,
            subscriptions: r.moved,
        })
        .collect();
    Ok(Mrr {
        at: to,
        mrr,
        from,
        to,
        movements,
    })
}

#[derive(Debug, Serialize, FromQueryResult, PartialEq)]
pub struct StatusCount {
    pub status: String,
    pub count: i64,
}

#[derive(Debug, Serialize, FromQueryResult, PartialEq)]
pub struct PlanCount {
    pub plan_id: String,
    pub count: i64,
}

#[derive(Debug, FromQueryResult)]
struct StatusPlanCount {
    status: String,
    plan_id: String,
    count: i64,
}

#[derive(Debug, FromQueryResult)]
struct ChurnRow {
    paying_at_start: i64,
    churned: i64,
}

#[derive(Debug, Serialize)]
pub struct Churn {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Subscriptions counting MRR at `from`.
    pub paying_at_start: i64,
    /// Subscriptions that stopped counting MRR in the window.
    pub churned: i64,
    /// `churned / paying_at_start`, 0 with none at the start.
    pub rate: f64,
}

#[derive(Debug, Serialize)]
pub struct SubscriptionFigures {
    pub by_status: Vec<StatusCount>,
    pub by_plan: Vec<PlanCount>,
    pub churn: Churn,
}

pub async fn subscription_figures(
    core: &crate::platform::Core,
    actor: &Actor,
    query: FiguresQuery,
) -> Result<SubscriptionFigures, BillingError> {
    admit(actor)?;
    let clock = clock_of(&query)?;
    let days = window(&query, now_in(core, &clock).await?, 3660)?;
    let (from, to) = (days.from, days.to);
    let db = &core.db;
    // One pass over the counts for both, one over the MRR changes' daily totals for the churn.
    let counts: Vec<StatusPlanCount> = in_world(
        db,
        "SELECT status, plan_id, CAST(SUM(subscriptions) AS BIGINT) AS count \
         FROM subscription_counts WHERE {world} GROUP BY status, plan_id \
         HAVING SUM(subscriptions) <> 0",
        Vec::new(),
        &clock,
    )
    .await?;
    let mut statuses: std::collections::BTreeMap<String, i64> = Default::default();
    let mut plans: std::collections::BTreeMap<String, i64> = Default::default();
    for row in counts {
        *statuses.entry(row.status.clone()).or_default() += row.count;
        if ["trialing", "active", "past_due", "paused"].contains(&row.status.as_str()) {
            *plans.entry(row.plan_id).or_default() += row.count;
        }
    }
    let by_status: Vec<StatusCount> = statuses
        .into_iter()
        .map(|(status, count)| StatusCount { status, count })
        .collect();
    let by_plan: Vec<PlanCount> = plans
        .into_iter()
        .map(|(plan_id, count)| PlanCount { plan_id, count })
        .collect();
    let churn: Vec<ChurnRow> = in_world(
        db,
        "SELECT CAST(COALESCE(SUM(CASE WHEN day < $1 THEN (CASE kind WHEN 'new' THEN changes \
                 WHEN 'reactivation' THEN changes WHEN 'churn' THEN -changes ELSE 0 END) ELSE 0 END), 0) \
                 AS BIGINT) AS paying_at_start, \
             CAST(COALESCE(SUM(CASE WHEN kind = 'churn' AND day >= $1 THEN changes ELSE 0 END), 0) \
                 AS BIGINT) AS churned \
         FROM mrr_days WHERE {world} AND day <= $2",
        vec![days.first.into(), days.last.into()],
        &clock,
    )
    .await?;
    let (paying_at_start, churned) = churn
        .first()
        .map_or((0, 0), |c| (c.paying_at_start, c.churned));
    let rate = if paying_at_start > 0 {
        (churned as f64 / paying_at_start as f64 * 10_000.0).round() / 10_000.0
    } else {
        0.0
    };
    Ok(SubscriptionFigures {
        by_status,
        by_plan,
        churn: Churn {
            from,
            to,
            paying_at_start,
            churned,
            rate,
        },
    })
}
