//! Billing's figures (admin), over whole UTC days: revenue by day or month and currency (every
//! succeeded payment, invoices' and one-off orders' alike, net of settled refunds), MRR and
//! its movements, subscriptions by status and plan, and churn. Each reads the running totals
//! kept as what it counts changes (`payments::revenue`, `totals`), not the rows themselves.
//!
//! MRR: an `active` or `past_due` subscription counts its plan's amount per month (a yearly
//! plan's amount / 12, a weekly one's × 52 / 12, a daily one's × 365 / 12, over
//! `interval_count`, rounded once, half away from zero); any other status counts 0. Every
//! change of that figure is a `subscription_mrr` row, written with the subscription event
//! that changed it (`totals::record_mrr`): `new` (0 → x, the first time), `reactivation`
//! (0 → x again), `expansion`, `contraction`, `churn` (x → 0).

use chrono::{DateTime, Duration, NaiveTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement};
use serde::{Deserialize, Serialize};
use shared::FieldError;

use super::entities::plans;
use super::model::{BillingError, SubscriptionStatus, TestClockId};
use super::periods::Interval;
use super::totals::world_of;
use crate::platform::db::{numbered, utc_day};
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

#[derive(Debug, Default, Deserialize)]
pub struct FiguresQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// `day` (default) or `month`: revenue's buckets.
    pub interval: Option<String>,
    /// A test clock's world instead of the real one (MRR and subscriptions).
    pub test_clock: Option<String>,
}

/// The window asked for, `[from, to)`, 30 days to now by default, at most `max_days` long,
/// widened to the whole UTC days the totals hold: from the start of the day `from` falls in
/// to the end of the day just before `to`.
struct Days {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Days {
    /// The first day counted, as the totals' `day` column holds it.
    fn first(&self) -> String {
        utc_day(self.from)
    }

    /// The last day counted.
    fn last(&self) -> String {
        utc_day(self.to - Duration::days(1))
    }
}

fn window(query: &FiguresQuery, now: DateTime<Utc>, max_days: i64) -> Result<Days, BillingError> {
    let out_of_range = || BillingError::invalid("to", "is out of range");
    let to = query.to.unwrap_or(now);
    let from = match query.from {
        Some(from) => from,
        None => to
            .checked_sub_signed(Duration::days(30))
            .ok_or_else(out_of_range)?,
    };
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
    let after_last = last.succ_opt().ok_or_else(out_of_range)?;
    let midnight = |d: chrono::NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
    Ok(Days {
        from: midnight(first),
        to: midnight(after_last),
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
        [days.first().into(), days.last().into()],
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
        vec![days.first().into(), days.last().into()],
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
        vec![days.first().into(), days.last().into()],
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

#[cfg(test)]
mod tests {
    use super::*;

    fn query(from: Option<&str>, to: Option<&str>) -> FiguresQuery {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.to_utc()).ok();
        FiguresQuery {
            from: from.and_then(at),
            to: to.and_then(at),
            ..FiguresQuery::default()
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2027-03-10T15:30:00Z")
            .map(|t| t.to_utc())
            .unwrap_or_default()
    }

    #[test]
    fn a_window_is_widened_to_whole_utc_days() {
        let days = window(&query(None, None), now(), 1100).ok();
        let days = days.map(|d| (d.first(), d.last(), d.from.to_rfc3339(), d.to.to_rfc3339()));
        assert_eq!(
            days,
            Some((
                "2027-02-08".to_owned(),
                "2027-03-10".to_owned(),
                "2027-02-08T00:00:00+00:00".to_owned(),
                "2027-03-11T00:00:00+00:00".to_owned()
            ))
        );
        // `to` at midnight ends with the day before.
        let days = window(
            &query(Some("2027-01-31T23:00:00Z"), Some("2027-02-02T00:00:00Z")),
            now(),
            1100,
        )
        .ok()
        .map(|d| (d.first(), d.last()));
        assert_eq!(
            days,
            Some(("2027-01-31".to_owned(), "2027-02-01".to_owned()))
        );
    }

    #[test]
    fn windows_at_the_calendar_s_ends_are_refused_not_panicked_on() {
        for (from, to) in [
            (None, DateTime::<Utc>::MIN_UTC),
            (None, DateTime::<Utc>::MAX_UTC),
        ] {
            let q = FiguresQuery {
                from,
                to: Some(to),
                ..FiguresQuery::default()
            };
            assert!(window(&q, now(), 1100).is_err(), "{to}");
        }
        assert!(
            window(
                &query(Some("2027-03-10T00:00:00Z"), Some("2027-03-10T00:00:00Z")),
                now(),
                1100
            )
            .is_err()
        );
    }
}
