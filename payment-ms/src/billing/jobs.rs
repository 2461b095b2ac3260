//! The billing clock's work: job rows (unique by kind, subject and due time) claimed under a
//! lease, run, and marked done. Each job checks the state it acts on first (a renewal only
//! renews the period it was scheduled for; a charge only charges an open invoice), and a
//! period is billed once by the unique billed-period row: a job run twice, or by two replicas,
//! bills nothing twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::entities::{billing_jobs, plans, subscriptions};
use super::invoices::{self as invoicing, Line, kind, reason};
use super::model::{BillingError, SubscriptionStatus, cadence, schedule};
use super::subscriptions::{end_now, record_subscription};
use super::{Billing, clocks, store};
use crate::events::SubscriptionChange;
use crate::events::outbox;
use crate::platform::db::after;
use crate::platform::retry_delay;

pub const RENEW: &str = "renew";
pub const FINALIZE: &str = "finalize";
pub const CHARGE: &str = "charge";
pub const EXPIRE_INCOMPLETE: &str = "expire_incomplete";
pub const TRIAL_ENDING: &str = "trial_ending";

/// How long a claimed job is held before another runner may take it (a charge waits on a
/// provider).
pub const LEASE: Duration = Duration::from_secs(300);

/// Runs one claimed job at `at` and records how it went.
pub async fn run_one(billing: &Billing, job: &billing_jobs::Model, at: DateTime<Utc>) {
    // Boxed: a job's work is deep (a charge pays an order that pays an invoice…).
    let result = outbox::in_scope(Box::pin(run(billing, job, at))).await;
    let db = &billing.core.db;
    let now = billing.core.now();
    let recorded = match result {
        Ok(()) => store::job_done(db, &job.id, now).await,
        Err(e) => {
            let failures = u32::try_from(job.attempts).unwrap_or(u32::MAX);
            let delay = retry_delay(failures, Duration::from_secs(30), Duration::from_secs(3600));
            tracing::warn!(error = %e, job_id = %job.id, kind = %job.kind, subject_id = %job.subject_id,
                "billing job failed; it will be tried again");
            store::job_failed(db, &job.id, &e.to_string(), after(now, delay)).await
        }
    };
    if let Err(e) = recorded {
        // The lease runs out and the job is tried again; it is safe to run twice.
        tracing::warn!(error = %e, job_id = %job.id, "could not record a billing job's outcome");
    }
}

async fn run(
    billing: &Billing,
    job: &billing_jobs::Model,
    at: DateTime<Utc>,
) -> Result<(), BillingError> {
    let core = &billing.core;
    match job.kind.as_str() {
        RENEW => renew(billing, &job.subject_id, job.due_at, at).await,
        FINALIZE => {
            let txn = core.begin().await?;
            invoicing::finalize(billing, &txn, &job.subject_id, at).await?;
            core.commit(txn).await?;
            Ok(())
        }
        CHARGE => invoicing::charge(billing, job, at).await.map(drop),
        EXPIRE_INCOMPLETE => expire_incomplete(billing, &job.subject_id, at).await,
        TRIAL_ENDING => {
            let txn = core.begin().await?;
            if let Some(sub) = store::lock_subscription(&txn, &job.subject_id).await?
                && sub.status == SubscriptionStatus::Trialing
            {
                record_subscription(
                    &txn,
                    &core.outbox,
                    SubscriptionChange::TrialEnding,
                    &sub,
                    at,
                )
                .await?;
            }
            core.commit(txn).await?;
            Ok(())
        }
        other => {
            tracing::warn!(kind = other, job_id = %job.id, "unknown billing job kind; marked done");
            Ok(())
        }
    }
}

/// The period that ends at `due` has ended: the next one starts, billed in advance (unless
/// paused); a cancel at the period's end ends the subscription instead, and a pending plan
/// takes over.
async fn renew(
    billing: &Billing,
    sub_id: &str,
    due: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<(), BillingError> {
    let core = &billing.core;
    let outbox = &core.outbox;
    let txn = core.begin().await?;
    let Some(mut sub) = store::lock_subscription(&txn, sub_id).await? else {
        return Ok(());
    };
    // Renewed already (this job ran before), or no longer billed.
    if sub.current_period_end != due
        || matches!(
            sub.status,
            SubscriptionStatus::Canceled
                | SubscriptionStatus::IncompleteExpired
                | SubscriptionStatus::Unpaid
                | SubscriptionStatus::Incomplete
        )
    {
        return Ok(());
    }
    if sub.cancel_at_period_end {
        let voided = end_now(&txn, outbox, &mut sub, "canceled at the period's end", due).await?;
        core.commit(txn).await?;
        for invoice in &voided {
            invoicing::close_orders_of(billing, invoice).await?;
        }
        return Ok(());
    }
    let mut plan = super::plans::find(&txn, &sub.plan_id)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("plan {}", sub.plan_id)))?;
    if let Some(pending) = sub.pending_plan_id.take() {
        let next = super::plans::find(&txn, &pending)
            .await?
            .ok_or_else(|| BillingError::NotFound(format!("plan {pending}")))?;
        if cadence(&next) != cadence(&plan) {
            // Another interval: its periods start from here.
            sub.billing_anchor = due;
        }
        sub.plan_id = next.id.clone();
        plan = next;
    }
    let end = period_after(&sub, &plan, due).ok_or_else(|| {
        BillingError::Conflict(
            "period_out_of_range",
            format!("subscription {sub_id}'s periods run past the calendar"),
        )
    })?;
    sub.current_period_start = due;
    sub.current_period_end = end;
    if sub.status == SubscriptionStatus::Trialing {
        sub.status = SubscriptionStatus::Active;
    }
    sub.updated_at = at;
    store::save_subscription(&txn, &sub).await?;
    let clock = sub.test_clock_id.clone();
    if sub.status != SubscriptionStatus::Paused {
        let line = recurring_line(&plan, (due, end));
        let finalize_at = after(due, billing.config.finalize_grace);
        let invoice = invoicing::draft(
            billing,
            &txn,
            &sub,
            (reason::CYCLE, (due, end)),
            vec![line],
            (at, finalize_at),
        )
        .await?;
        if !store::mark_billed(&txn, &sub.id, (due, end), kind::RECURRING, &invoice.id).await? {
            // Billed by an earlier run whose renewal of the subscription did not stick.
            return Ok(());
        }
    }
    record_subscription(&txn, outbox, SubscriptionChange::Updated, &sub, at).await?;
    store::schedule(&txn, RENEW, &sub.id, end, clock.as_deref(), at).await?;
    core.commit(txn).await?;
    Ok(())
}

/// The end of the period that starts at `due` (a boundary of the subscription's periods), if
/// the calendar has it.
pub fn period_after(
    sub: &subscriptions::Model,
    plan: &plans::Model,
    due: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let periods = schedule(sub, plan);
    let k = periods.index_at(due).unwrap_or(0);
    periods.boundary(k + 1)
}

/// A period's recurring fee: the plan's amount, billed in advance.
pub fn recurring_line(plan: &plans::Model, period: (DateTime<Utc>, DateTime<Utc>)) -> Line {
    Line {
        kind: kind::RECURRING,
        description: format!("{} ({})", plan.name, plan.code),
        plan_id: Some(plan.id.clone()),
        amount: plan.amount,
        period,
    }
}

/// A first invoice unpaid for too long: the subscription ends as `incomplete_expired`.
async fn expire_incomplete(
    billing: &Billing,
    sub_id: &str,
    at: DateTime<Utc>,
) -> Result<(), BillingError> {
    let core = &billing.core;
    let txn = core.begin().await?;
    let Some(mut sub) = store::lock_subscription(&txn, sub_id).await? else {
        return Ok(());
    };
    if sub.status != SubscriptionStatus::Incomplete {
        return Ok(());
    }
    let mut voided = Vec::new();
    for invoice in store::unpaid_invoices(&txn, sub_id).await? {
        voided.push(
            invoicing::end_invoice(
                &txn,
                &core.outbox,
                invoice,
                super::model::InvoiceStatus::Void,
                at,
            )
            .await?,
        );
    }
    sub.status = SubscriptionStatus::IncompleteExpired;
    sub.ended_at = Some(at);
    sub.updated_at = at;
    store::save_subscription(&txn, &sub).await?;
    record_subscription(&txn, &core.outbox, SubscriptionChange::Updated, &sub, at).await?;
    core.commit(txn).await?;
    for invoice in &voided {
        invoicing::close_orders_of(billing, invoice).await?;
    }
    Ok(())
}

/// Runs the real clock's due jobs until none is left. Each claim takes up to a batch's worth
/// of jobs, whose renewals, finalizations and charges are made set-based
/// ([`bill_run`](super::bill_run)) and the rest one by one. On PostgreSQL up to
/// `BILLING_CONCURRENCY` claims are at work at once, each on a task of its own so they use
/// every core, and a slot that frees claims again at once: no claim waits for a slower one, and
/// the work one claim schedules (a renewal's finalization) is found by the next. On SQLite,
/// which writes one transaction at a time, one claim after another. Stops claiming once
/// `shutdown` is cancelled. Answers how many jobs were claimed.
pub async fn drain(billing: &Billing, shutdown: &CancellationToken) -> usize {
    let postgres = billing.core.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
    let slots = if postgres {
        billing.config.concurrency.max(1)
    } else {
        1
    };
    let mut running = tokio::task::JoinSet::new();
    let mut claimed = 0;
    loop {
        while running.len() < slots && !shutdown.is_cancelled() {
            let now = billing.core.now();
            let limit = BILL_RUN_CHUNK as u64;
            let jobs =
                match store::claim_jobs(&billing.core.db, None, now, now, after(now, LEASE), limit)
                    .await
                {
                    Ok(jobs) => jobs,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not claim billing jobs");
                        break;
                    }
                };
            if jobs.is_empty() {
                break;
            }
            claimed += jobs.len();
            let billing = billing.clone();
            running.spawn(async move { run_claimed(&billing, jobs, now).await });
        }
        match running.join_next().await {
            None => return claimed,
            Some(Err(e)) => tracing::warn!(error = %e, "a billing job's task ended abnormally"),
            Some(Ok(())) => {}
        }
    }
}

/// Jobs claimed by one slot at a time: a set-based batch of each kind.
const BILL_RUN_CHUNK: usize = 250;

/// The kinds of job made in set-based batches, in the order their batches run.
const BATCHED: [&str; 3] = [RENEW, FINALIZE, CHARGE];

/// Runs the jobs of one claim: those of a batched kind as a set-based batch of each kind, the
/// others alone. A batch's jobs it leaves, and all of them if it fails (a batch changes nothing
/// or all), run alone; the follow-up jobs it claimed for itself (a renewal's finalizations or
/// charges, a finalization's charges) run next, in the same way.
async fn run_claimed(billing: &Billing, jobs: Vec<billing_jobs::Model>, at: DateTime<Utc>) {
    let mut queue = std::collections::VecDeque::new();
    let mut pending = jobs;
    loop {
        for kind in BATCHED {
            let (of_kind, rest): (Vec<_>, Vec<_>) =
                pending.into_iter().partition(|j| j.kind == kind);
            pending = rest;
            if !of_kind.is_empty() {
                queue.push_back(of_kind);
            }
        }
        for job in &pending {
            run_one(billing, job, at).await;
        }
        let Some(jobs) = queue.pop_front() else {
            return;
        };
        let batch = async {
            use super::bill_run::{Batched, charge_all, finalize_all, renew_all};
            match jobs.first().map(|j| j.kind.as_str()) {
                Some(RENEW) => renew_all(billing, &jobs, at).await,
                Some(FINALIZE) => finalize_all(billing, &jobs, at).await,
                Some(CHARGE) => Box::pin(charge_all(billing, &jobs, at)).await,
                _ => Ok(Batched::alone(jobs.clone())),
            }
        };
        let batched = outbox::in_scope(batch).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, jobs = jobs.len(), "a bill-run batch failed; its jobs run one at a time");
            super::bill_run::Batched::alone(jobs.clone())
        });
        for job in &batched.alone {
            run_one(billing, job, at).await;
        }
        pending = batched.next;
    }
}

/// After a use case scheduled work due now: a test clock's jobs run at once (up to its time);
/// the real clock's runner is woken.
pub async fn run_now(billing: &Billing, clock: Option<&str>) {
    match clock {
        Some(clock) => {
            let until = match clocks::time_of(&billing.core.db, clock).await {
                Ok(Some(t)) => t,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, clock, "could not read a test clock");
                    return;
                }
            };
            if let Err(e) = clocks::run_until(billing, clock, until).await {
                tracing::warn!(error = %e, clock, "could not run a test clock's due jobs");
            }
        }
        None => billing.due.notify_one(),
    }
}

/// The job runner of this replica: woken when work is due now, else every poll interval; each
/// time it drains what is due.
pub async fn run_loop(billing: Billing, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(billing.config.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            _ = billing.due.notified() => {}
        }
        drain(&billing, &shutdown).await;
    }
}
