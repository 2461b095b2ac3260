//! Test clocks (as Stripe's): an admin creates a clock, subscribes on it, and advances it;
//! everything due in between (renewals, finalizations, charges, retries, expiries) runs in the
//! order it falls due, each at its own time on the clock. Enabled in the dev profile or with
//! `BILLING_TEST_CLOCKS=true`.

use chrono::{DateTime, Datelike, SubsecRound, Utc};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, IntoActiveModel};
use shared::billing::{AdvanceClockIn, TestClockIn, TestClockOut};
use shared::ids;

use super::entities::{subscriptions, test_clocks};
use super::model::{BillingError, TestClockId};
use super::{Billing, jobs, store};
use crate::platform::db::after;
use crate::platform::{Actor, Core, validate};

/// The most an advance may move a clock: a bound on the work one request does.
const MAX_ADVANCE_DAYS: i64 = 3 * 366;
/// The most jobs one advance runs.
const MAX_JOBS_PER_ADVANCE: u64 = 20_000;

/// The time on a test clock, or the real time without one.
pub async fn now_of<C: ConnectionTrait>(
    db: &C,
    core: &Core,
    clock: Option<&str>,
) -> Result<DateTime<Utc>, DbErr> {
    Ok(match clock {
        Some(id) => time_of(db, id).await?.unwrap_or_else(|| core.now()),
        None => core.now(),
    })
}

/// A test clock's time.
pub async fn time_of<C: ConnectionTrait>(
    db: &C,
    clock: &str,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    Ok(test_clocks::Entity::find_by_id(clock)
        .one(db)
        .await?
        .map(|c| c.frozen_time))
}

/// The time a subscription lives on (its clock's, or the real time).
pub async fn now_of_subscription<C: ConnectionTrait>(
    db: &C,
    core: &Core,
    subscription: Option<&str>,
) -> Result<DateTime<Utc>, DbErr> {
    let clock = match subscription {
        Some(id) => subscriptions::Entity::find_by_id(id)
            .one(db)
            .await?
            .and_then(|s| s.test_clock_id),
        None => None,
    };
    now_of(db, core, clock.as_deref()).await
}

fn admit(billing: &Billing, actor: &Actor) -> Result<(), BillingError> {
    if !billing.config.test_clocks {
        return Err(BillingError::Forbidden(
            "Test clocks are off on this deployment (BILLING_TEST_CLOCKS=true, or the dev profile)"
                .to_owned(),
        ));
    }
    if !actor.is_admin() {
        return Err(BillingError::Forbidden(
            "Test clocks are for the admin role".to_owned(),
        ));
    }
    Ok(())
}

fn out(clock: test_clocks::Model, jobs_run: u64) -> TestClockOut {
    TestClockOut {
        id: clock.id,
        name: clock.name,
        frozen_time: clock.frozen_time,
        created_at: clock.created_at,
        jobs_run,
    }
}

/// A clock a subscription may be created on, for this actor.
pub async fn usable(
    billing: &Billing,
    actor: &Actor,
    id: &str,
) -> Result<test_clocks::Model, BillingError> {
    admit(billing, actor).map_err(|e| match e {
        BillingError::Forbidden(why) => BillingError::invalid("test_clock", why),
        other => other,
    })?;
    let found = match TestClockId::parse(id) {
        Some(id) => {
            test_clocks::Entity::find_by_id(id.as_str())
                .one(&billing.core.db)
                .await?
        }
        None => None,
    };
    found.ok_or_else(|| BillingError::invalid("test_clock", "no such test clock"))
}

pub async fn create_clock(
    billing: &Billing,
    actor: &Actor,
    input: TestClockIn,
) -> Result<TestClockOut, BillingError> {
    admit(billing, actor)?;
    let mut errors = Vec::new();
    if let Some(name) = &input.name {
        validate::text(&mut errors, "name", name, 255);
    }
    if let Some(at) = input.frozen_time
        && !(2000..=2200).contains(&at.year())
    {
        errors.push(shared::FieldError::new(
            "frozen_time",
            "must be in the years 2000 to 2200",
        ));
    }
    validate::finish(errors).map_err(BillingError::Invalid)?;
    let now = billing.core.now();
    let clock = test_clocks::Model {
        id: ids::new_id(ids::TEST_CLOCK),
        name: input.name.unwrap_or_default(),
        frozen_time: input.frozen_time.map_or(now, |t| t.trunc_subsecs(6)),
        created_at: now,
        updated_at: now,
    };
    test_clocks::Entity::insert(clock.clone().into_active_model())
        .exec_without_returning(&billing.core.db)
        .await?;
    Ok(out(clock, 0))
}

async fn find(billing: &Billing, id: &str) -> Result<test_clocks::Model, BillingError> {
    let not_found = || BillingError::NotFound(format!("test clock {id}"));
    let id = TestClockId::parse(id).ok_or_else(not_found)?;
    test_clocks::Entity::find_by_id(id.as_str())
        .one(&billing.core.db)
        .await?
        .ok_or_else(not_found)
}

pub async fn get_clock(
    billing: &Billing,
    actor: &Actor,
    id: &str,
) -> Result<TestClockOut, BillingError> {
    admit(billing, actor)?;
    Ok(out(find(billing, id).await?, 0))
}

/// Moves the clock forward to `frozen_time`, running every job due on it by then, earliest
/// first, each at its due time (jobs those jobs schedule within the window run too).
pub async fn advance_clock(
    billing: &Billing,
    actor: &Actor,
    id: &str,
    input: AdvanceClockIn,
) -> Result<TestClockOut, BillingError> {
    admit(billing, actor)?;
    let clock = find(billing, id).await?;
    let target = input.frozen_time.trunc_subsecs(6);
    if target < clock.frozen_time {
        return Err(BillingError::invalid(
            "frozen_time",
            "must not be before the clock's time: a clock only moves forward",
        ));
    }
    if target.year() > 2200 {
        return Err(BillingError::invalid(
            "frozen_time",
            "must be in the years 2000 to 2200",
        ));
    }
    if target
        > after(
            clock.frozen_time,
            std::time::Duration::from_secs(MAX_ADVANCE_DAYS as u64 * 86_400),
        )
    {
        return Err(BillingError::invalid(
            "frozen_time",
            "must be at most 3 years after the clock's time; advance in steps",
        ));
    }
    let ran = run_until(billing, &clock.id, target).await?;
    set_time(billing, &clock.id, target).await?;
    Ok(out(find(billing, id).await?, ran))
}

async fn set_time(billing: &Billing, clock: &str, to: DateTime<Utc>) -> Result<(), DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter};
    // Never backwards, even with two advances at once.
    test_clocks::Entity::update_many()
        .col_expr(test_clocks::Column::FrozenTime, to.into())
        .col_expr(test_clocks::Column::UpdatedAt, billing.core.now().into())
        .filter(test_clocks::Column::Id.eq(clock))
        .filter(test_clocks::Column::FrozenTime.lt(to))
        .exec(&billing.core.db)
        .await?;
    Ok(())
}

/// Runs the clock's jobs due by `until`, one at a time in due order, the clock moving to each
/// job's time first. Answers how many ran. The jobs run on a task of their own: a request
/// that advances a clock (or makes work due on one) does not carry their whole depth.
pub async fn run_until(
    billing: &Billing,
    clock: &str,
    until: DateTime<Utc>,
) -> Result<u64, BillingError> {
    let (billing, clock) = (billing.clone(), clock.to_owned());
    tokio::spawn(async move { run_jobs_until(&billing, &clock, until).await })
        .await
        .map_err(|e| {
            BillingError::Fault(crate::platform::Fault::Internal(anyhow::anyhow!(
                "a test clock's jobs stopped: {e}"
            )))
        })?
}

async fn run_jobs_until(
    billing: &Billing,
    clock: &str,
    until: DateTime<Utc>,
) -> Result<u64, BillingError> {
    let mut ran = 0;
    while ran < MAX_JOBS_PER_ADVANCE {
        let now = billing.core.now();
        let Some(next) = store::next_job_of_clock(&billing.core.db, clock, until, now).await?
        else {
            break;
        };
        set_time(billing, clock, next.due_at).await?;
        let claimed = store::claim_jobs(
            &billing.core.db,
            Some(clock),
            next.due_at,
            now,
            after(now, jobs::LEASE),
            1,
        )
        .await?;
        let Some(job) = claimed.into_iter().next() else {
            // Another advance holds it, or it failed and waits for its retry.
            break;
        };
        let at = job.due_at;
        jobs::run_one(billing, &job, at).await;
        ran += 1;
    }
    Ok(ran)
}
