//! Billing fixtures: many subscriptions whose period ends at once, for the tests and the
//! benchmark of a bill run (made directly in the tables: the API would make each one's first
//! invoice too).

use chrono::{DateTime, SubsecRound, Utc};
use payment_ms::billing::entities::{billing_jobs, plans, subscriptions};
use payment_ms::billing::model::SubscriptionStatus;
use payment_ms::billing::totals::{self, MrrChange};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    IntoActiveModel, Statement,
};

/// `n` active subscriptions to a daily `plan_id` whose period ends now, each with its renewal
/// job due now, and `payment_method` saved; each one's MRR and count as its creation records
/// them. Answers the moment they are due.
pub async fn due_now(
    db: &DatabaseConnection,
    plan_id: &str,
    n: usize,
    payment_method: Option<&str>,
) -> Result<DateTime<Utc>, DbErr> {
    due_now_with(db, plan_id, n, payment_method, |_, _| {}).await
}

/// [`due_now`], each subscription (the `i`th of them) adjusted by `adjust` before it is written.
pub async fn due_now_with(
    db: &DatabaseConnection,
    plan_id: &str,
    n: usize,
    payment_method: Option<&str>,
    adjust: impl Fn(usize, &mut subscriptions::Model),
) -> Result<DateTime<Utc>, DbErr> {
    let due = Utc::now().trunc_subsecs(6);
    let anchor = due - chrono::Duration::days(1);
    let plan = plans::Entity::find_by_id(plan_id)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("plan {plan_id}")))?;
    let mrr = payment_ms::billing::figures::mrr(SubscriptionStatus::Active, &plan);
    for start in (0..n).step_by(500) {
        let subs: Vec<subscriptions::Model> = (start..(start + 500).min(n))
            .map(|i| {
                let mut sub = subscriptions::Model {
                    id: shared::ids::new_id(shared::ids::SUBSCRIPTION),
                    user_id: format!("user{i}"),
                    plan_id: plan_id.to_owned(),
                    status: SubscriptionStatus::Active,
                    time_zone: "UTC".to_owned(),
                    billing_anchor: anchor,
                    current_period_start: anchor,
                    current_period_end: due,
                    trial_end: None,
                    cancel_at_period_end: false,
                    cancellation_reason: None,
                    canceled_at: None,
                    ended_at: None,
                    pending_plan_id: None,
                    paused_at: None,
                    payment_method: payment_method.map(str::to_owned),
                    test_clock_id: None,
                    metadata: serde_json::json!({}),
                    created_at: anchor,
                    updated_at: anchor,
                    mrr,
                };
                adjust(i, &mut sub);
                sub
            })
            .collect();
        let jobs: Vec<billing_jobs::Model> = subs
            .iter()
            .map(|s| billing_jobs::Model {
                id: shared::ids::new_id(shared::ids::BILLING_JOB),
                kind: "renew".to_owned(),
                subject_id: s.id.clone(),
                due_at: due,
                test_clock_id: None,
                status: "pending".to_owned(),
                attempts: 0,
                lease_until: None,
                last_error: None,
                created_at: anchor,
                done_at: None,
                payment_id: None,
            })
            .collect();
        let backend = db.get_database_backend();
        let mut values: Vec<sea_orm::Value> = Vec::new();
        let mut rows = Vec::new();
        for sub in &subs {
            let n = values.len();
            rows.push(format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, 'new')",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6
            ));
            values.extend([
                shared::ids::new_id(shared::ids::MRR_CHANGE).into(),
                sub.id.clone().into(),
                plan.currency.clone().into(),
                anchor.into(),
                mrr.into(),
                mrr.into(),
            ]);
        }
        let sql = format!(
            "INSERT INTO subscription_mrr (id, subscription_id, currency, at, mrr, delta, kind) \
             VALUES {}",
            rows.join(", ")
        );
        let sql = match backend {
            DatabaseBackend::Sqlite => sql.replace('$', "?"),
            _ => sql,
        };
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        let changes: Vec<MrrChange<'_>> = subs
            .iter()
            .map(|_| MrrChange {
                world: "",
                at: anchor,
                currency: &plan.currency,
                kind: "new",
                delta: mrr,
            })
            .collect();
        totals::add_mrr_changes(db, &changes).await?;
        totals::count_new(db, &subs).await?;
        subscriptions::Entity::insert_many(
            subs.into_iter().map(IntoActiveModel::into_active_model),
        )
        .exec_without_returning(db)
        .await?;
        billing_jobs::Entity::insert_many(jobs.into_iter().map(IntoActiveModel::into_active_model))
            .exec_without_returning(db)
            .await?;
    }
    Ok(due)
}

/// Waits (two minutes at most) until no billing job is due and `settled` says what it waits
/// for is there (read with `settled`'s own query); panics with what is still due otherwise.
pub async fn run_until_settled<F, Fut>(db: &DatabaseConnection, settled: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (bool, String)>,
{
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let pending = billing_jobs::Entity::find()
            .filter(billing_jobs::Column::Status.eq("pending"))
            .filter(billing_jobs::Column::DueAt.lte(Utc::now()))
            .count(db)
            .await
            .expect("count the due jobs");
        let (done, what) = settled().await;
        if pending == 0 && done {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{pending} jobs still due, {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[derive(Debug, PartialEq, FromQueryResult)]
struct Total {
    key: String,
    total: i64,
    n: i64,
}

async fn totals_of(db: &DatabaseConnection, sql: &str) -> Vec<Total> {
    Total::find_by_statement(Statement::from_string(db.get_database_backend(), sql))
        .all(db)
        .await
        // A test helper: a query that fails fails the test asserting with it.
        .expect("totals")
}

/// Asserts that the running totals the figures read (`mrr_days`, `subscription_counts`) hold
/// what the rows they count add up to: the MRR changes per world, day, currency and kind, and
/// the subscriptions per world, status and plan.
pub async fn assert_totals_match(db: &DatabaseConnection) {
    let day = match db.get_database_backend() {
        DatabaseBackend::Postgres => "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        _ => "strftime('%Y-%m-%d', at)",
    };
    let kept = totals_of(
        db,
        "SELECT world || '/' || day || '/' || currency || '/' || kind AS key, \
             CAST(SUM(delta) AS BIGINT) AS total, CAST(SUM(changes) AS BIGINT) AS n \
         FROM mrr_days GROUP BY world, day, currency, kind ORDER BY key",
    )
    .await;
    let counted = totals_of(
        db,
        &format!(
            "SELECT COALESCE(test_clock_id, '') || '/' || {day} || '/' || currency || '/' || kind \
                 AS key, CAST(SUM(delta) AS BIGINT) AS total, CAST(COUNT(*) AS BIGINT) AS n \
             FROM subscription_mrr GROUP BY 1 ORDER BY key"
        ),
    )
    .await;
    assert_eq!(kept, counted, "mrr_days against subscription_mrr");
    let kept = totals_of(
        db,
        "SELECT world || '/' || status || '/' || plan_id AS key, \
             CAST(SUM(subscriptions) AS BIGINT) AS total, CAST(0 AS BIGINT) AS n \
         FROM subscription_counts GROUP BY world, status, plan_id \
         HAVING SUM(subscriptions) <> 0 ORDER BY key",
    )
    .await;
    let counted = totals_of(
        db,
        "SELECT COALESCE(test_clock_id, '') || '/' || status || '/' || plan_id AS key, \
             CAST(COUNT(*) AS BIGINT) AS total, CAST(0 AS BIGINT) AS n \
         FROM subscriptions GROUP BY 1 ORDER BY key",
    )
    .await;
    assert_eq!(kept, counted, "subscription_counts against subscriptions");
}

/// Rolls back the migration that made the figures' running totals (and any after it) and
/// applies it again: the totals are then what it makes of the rows already there.
pub async fn rebuild_totals(db: &DatabaseConnection) -> Result<(), DbErr> {
    use migrations::{Migrator, MigratorTrait};
    const TOTALS: &str = "m20261130_000019_create_figure_totals";
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let at = names
        .iter()
        .position(|n| n == TOTALS)
        .ok_or_else(|| DbErr::Custom(format!("no migration {TOTALS}")))?;
    let steps = u32::try_from(names.len() - at).map_err(|e| DbErr::Custom(e.to_string()))?;
    Migrator::down(db, Some(steps)).await?;
    Migrator::up(db, None).await
}
