//! Billing fixtures: many subscriptions whose period ends at once, for the tests and the
//! benchmark of a bill run (made directly in the tables: the API would make each one's first
//! invoice too).

use chrono::{DateTime, SubsecRound, Utc};
use payment_ms::billing::entities::{billing_jobs, subscriptions};
use payment_ms::billing::model::SubscriptionStatus;
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, IntoActiveModel};

/// `n` active subscriptions to a daily `plan_id` whose period ends now, each with its renewal
/// job due now, and `payment_method` saved. Answers the moment they are due.
pub async fn due_now(
    db: &DatabaseConnection,
    plan_id: &str,
    n: usize,
    payment_method: Option<&str>,
) -> Result<DateTime<Utc>, DbErr> {
    let due = Utc::now().trunc_subsecs(6);
    let anchor = due - chrono::Duration::days(1);
    for start in (0..n).step_by(500) {
        let subs: Vec<subscriptions::Model> = (start..(start + 500).min(n))
            .map(|i| subscriptions::Model {
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
                mrr: 0,
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
