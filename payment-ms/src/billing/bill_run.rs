//! The bill run, set-based: the renewals and finalizations the real clock finds due together are
//! made a batch at a time, each batch in one transaction of a few statements whatever its size
//! (its subscriptions or invoices read and locked with one statement, its invoices, lines,
//! billed periods, orders, jobs and events written with multi-row inserts, its numbers taken
//! with one update of the counter row).
//!
//! Only the plain cases are batched, and each is exactly what its job would do alone: a renewal
//! of an `active` subscription off any test clock, with no cancel or plan change pending, at the
//! end of its current period; a finalization of a draft with something to pay. Every other job
//! (trials ending, past-due or paused subscriptions, zero totals, a subscription already renewed)
//! runs alone through [`jobs::run_one`], and so does every job of a batch that fails: a batch
//! either commits whole with its jobs marked done, or changes nothing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr, Value};
use shared::billing::{InvoiceOut, SubscriptionOut};

use super::entities::{billing_jobs, invoice_lines, invoices, plans, subscriptions};
use super::invoices::{self as invoicing, reason};
use super::jobs::{self, CHARGE, FINALIZE, RENEW};
use super::model::{
    BillingError, InvoiceStatus, SubscriptionStatus, invoice_out, subscription_out,
};
use super::store::{self, Billed, Due};
use super::{Billing, figures};
use crate::events::{Event, InvoiceChange, SubscriptionChange};
use crate::orders;
use crate::payments::charges::{Charged, SavedCharge};
use crate::platform::db::{after, find_each, update_each};

/// What a batch leaves: the jobs to run alone, and the follow-up jobs it scheduled due at once
/// and claimed for its runner (a renewal's finalizations, a finalization's charges).
#[derive(Default)]
pub struct Batched {
    pub alone: Vec<billing_jobs::Model>,
    pub next: Vec<billing_jobs::Model>,
}

impl Batched {
    /// Only jobs to run alone (all of a batch that failed or did nothing).
    pub fn alone(alone: Vec<billing_jobs::Model>) -> Batched {
        Batched {
            alone,
            next: Vec::new(),
        }
    }
}

/// Renews the plain renewals of `jobs` (all `renew`, due by `at`) together.
pub async fn renew_all(
    billing: &Billing,
    jobs: &[billing_jobs::Model],
    at: DateTime<Utc>,
) -> Result<Batched, BillingError> {
    let core = &billing.core;
    let txn = core.begin_batch().await?;
    let wanted = jobs.iter().map(|j| j.subject_id.as_str());
    let subs = store::lock_subscriptions(&txn, wanted).await?;
    let plan_ids: Vec<&str> = subs.values().map(|s| s.plan_id.as_str()).collect();
    let plans: HashMap<String, plans::Model> =
        find_each::<plans::Entity, _>(&txn, plans::Column::Id, &plan_ids, false)
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();

    let mut left = Vec::new();
    let mut renewed = Vec::new();
    for job in jobs {
        let found = subs.get(&job.subject_id).and_then(|sub| {
            let plan = plans.get(&sub.plan_id)?;
            let plain = job.test_clock_id.is_none()
                && sub.test_clock_id.is_none()
                && sub.status == SubscriptionStatus::Active
                && !sub.cancel_at_period_end
                && sub.pending_plan_id.is_none()
                && sub.current_period_end == job.due_at
                // Its MRR stays as it is: no change of it to record.
                && sub.mrr == figures::mrr(SubscriptionStatus::Active, plan);
            let end = jobs::period_after(sub, plan, job.due_at)?;
            plain.then_some((sub, plan, end))
        });
        let Some((sub, plan, end)) = found else {
            left.push(job.clone());
            continue;
        };
        let period = (job.due_at, end);
        let mut sub = sub.clone();
        sub.current_period_start = period.0;
        sub.current_period_end = period.1;
        sub.updated_at = at;
        let finalize_at = after(period.0, billing.config.finalize_grace);
        let (invoice, lines) = invoicing::draft_rows(
            &sub,
            plan.currency.clone(),
            (reason::CYCLE, period),
            vec![jobs::recurring_line(plan, period)],
            (at, finalize_at),
        );
        renewed.push((job, sub, plan, invoice, lines));
    }
    if renewed.is_empty() {
        return Ok(Batched::alone(left));
    }

    let billed: Vec<Billed<'_>> = renewed
        .iter()
        .map(|(_, sub, _, invoice, _)| Billed {
            subscription_id: &sub.id,
            period: (sub.current_period_start, sub.current_period_end),
            kind: invoicing::kind::RECURRING,
            invoice_id: &invoice.id,
        })
        .collect();
    if store::mark_all_billed(&txn, &billed).await? != billed.len() as u64 {
        // Some period was billed by an earlier run whose renewal did not stick: each job alone
        // finds out which.
        tracing::info!(
            jobs = jobs.len(),
            "a renewal batch met a period billed already; its jobs run one at a time"
        );
        return Ok(Batched::alone(jobs.to_vec()));
    }
    // The new periods, each subscription's from a `VALUES` list.
    let periods: Vec<Vec<Value>> = renewed
        .iter()
        .map(|(_, sub, ..)| {
            let (start, end) = (sub.current_period_start, sub.current_period_end);
            vec![sub.id.clone().into(), start.into(), end.into()]
        })
        .collect();
    let set = "current_period_start = v.column2, current_period_end = v.column3, updated_at = $1";
    update_each(&txn, "subscriptions", set, &[at.into()], &periods).await?;
    // Drafts due for finalization now (no grace period) are finalized here, in this
    // transaction, as their finalization job would: no job, no second writing of the invoice.
    let (now, later): (Vec<&Renewed<'_>>, Vec<&Renewed<'_>>) = renewed
        .iter()
        .partition(|(_, _, _, invoice, _)| invoice.finalize_at <= at && invoice.total > 0);
    let drafts: Vec<invoices::Model> = later.iter().map(|r| r.3.clone()).collect();
    let new_lines: Vec<invoice_lines::Model> =
        renewed.iter().flat_map(|r| r.4.iter().cloned()).collect();
    store::insert_invoices(&txn, &drafts, &new_lines).await?;
    let mut due: Vec<Due<'_>> = later
        .iter()
        .map(|(_, _, _, invoice, _)| Due {
            kind: FINALIZE,
            subject_id: &invoice.id,
            due: invoice.finalize_at,
            test_clock_id: None,
        })
        .collect();
    due.extend(renewed.iter().map(|(_, sub, ..)| Due {
        kind: RENEW,
        subject_id: &sub.id,
        due: sub.current_period_end,
        test_clock_id: None,
    }));
    let mut next = store::schedule_claimed(&txn, &due, at, after(at, jobs::LEASE)).await?;

    // Each subscription's events in the order its job alone records them.
    let outs: Vec<(InvoiceOut, SubscriptionOut)> = renewed
        .iter()
        .map(|(_, sub, plan, invoice, lines)| {
            (
                invoice_out(invoice.clone(), lines.clone()),
                subscription_out(sub.clone(), (*plan).clone(), Some(invoice.id.clone())),
            )
        })
        .collect();
    let events: Vec<Event<'_>> = outs
        .iter()
        .flat_map(|(invoice, sub)| {
            [
                Event::Invoice(InvoiceChange::Created, invoice),
                Event::Subscription(SubscriptionChange::Updated, sub),
            ]
        })
        .collect();
    core.outbox.record_all(&txn, &events, at).await?;
    let done: Vec<&str> = renewed.iter().map(|r| r.0.id.as_str()).collect();
    store::jobs_done(&txn, &done, at).await?;

    let drafts: Vec<Draft<'_>> = now
        .iter()
        .map(|(_, sub, _, invoice, lines)| (invoice, sub, lines.as_slice()))
        .collect();
    let (finalized, charges) = finalize_drafts(billing, &txn, &drafts, at).await?;
    store::insert_invoices(&txn, &finalized, &[]).await?;
    next.extend(charges);
    finish(billing, txn, &finalized, &drafts, at).await?;
    tracing::debug!(
        renewed = done.len(),
        finalized = finalized.len(),
        alone = left.len(),
        "bill-run batch"
    );
    Ok(Batched { alone: left, next })
}

/// A renewal of a batch: its job, the subscription in its new period, its plan, the draft and
/// its lines.
type Renewed<'a> = (
    &'a billing_jobs::Model,
    subscriptions::Model,
    &'a plans::Model,
    invoices::Model,
    Vec<invoice_lines::Model>,
);

/// A draft to finalize, its subscription and its lines.
type Draft<'a> = (
    &'a invoices::Model,
    &'a subscriptions::Model,
    &'a [invoice_lines::Model],
);

/// Finalizes `drafts` in a batch's transaction: the charges of those with a saved payment
/// method scheduled and claimed first, then their orders made and numbered and their invoice
/// numbers taken (the counter rows stay locked from there to the commit, so the caller writes
/// only what carries a number after this). Answers the invoices as finalized, not written (a
/// finalization updates its drafts, a renewal inserts them so), and the charges claimed.
async fn finalize_drafts(
    billing: &Billing,
    txn: &DatabaseTransaction,
    drafts: &[Draft<'_>],
    at: DateTime<Utc>,
) -> Result<(Vec<invoices::Model>, Vec<billing_jobs::Model>), BillingError> {
    if drafts.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let due: Vec<Due<'_>> = drafts
        .iter()
        .filter(|(_, sub, _)| sub.payment_method.is_some())
        .map(|(invoice, ..)| Due {
            kind: CHARGE,
            subject_id: &invoice.id,
            due: at,
            test_clock_id: None,
        })
        .collect();
    let charges = store::schedule_claimed(txn, &due, at, after(at, jobs::LEASE)).await?;
    let names: Vec<String> = drafts
        .iter()
        .map(|(invoice, _, lines)| invoicing::order_name(invoice, lines))
        .collect();
    let billed = drafts
        .iter()
        .zip(&names)
        .map(|((invoice, ..), name)| invoicing::billed_order(invoice, name, at))
        .collect();
    let core = &billing.core;
    let orders = orders::service::create_all_billed(txn, &core.outbox, billed, at).await?;
    let numbers = invoicing::invoice_numbers(billing, txn, at, drafts.len()).await?;
    let finalized = drafts
        .iter()
        .zip(orders)
        .zip(numbers)
        .map(|(((invoice, sub, _), order), number)| {
            let mut invoice = (*invoice).clone();
            invoice.status = InvoiceStatus::Open;
            invoice.finalized_at = Some(at);
            invoice.updated_at = at;
            invoice.order_id = Some(order.id);
            invoice.number = Some(number);
            if sub.payment_method.is_some() {
                invoice.next_attempt_at = Some(at);
            }
            invoice
        })
        .collect();
    Ok((finalized, charges))
}

/// Finalizes the drafts of `jobs` (all `finalize`) that have something to pay together: their
/// orders made and numbered, their invoice numbers taken with one update, the charges of those
/// with a saved payment method scheduled.
pub async fn finalize_all(
    billing: &Billing,
    jobs: &[billing_jobs::Model],
    at: DateTime<Utc>,
) -> Result<Batched, BillingError> {
    let core = &billing.core;
    let txn = core.begin_batch().await?;
    // As a finalization alone: the invoice locked first, then its subscription.
    let (drafts, subs) = invoices_and_subscriptions(&txn, jobs, true).await?;
    let mut left = Vec::new();
    let mut taken = Vec::new();
    for job in jobs {
        let found = drafts.get(&job.subject_id).and_then(|invoice| {
            let sub = subs.get(invoice.subscription_id.as_deref()?)?;
            let plain = job.test_clock_id.is_none()
                && sub.test_clock_id.is_none()
                && invoice.status == InvoiceStatus::Draft
                && invoice.total > 0;
            plain.then_some((invoice, sub))
        });
        match found {
            Some(found) => taken.push((job, found.0.clone(), found.1)),
            None => left.push(job.clone()),
        }
    }
    if taken.is_empty() {
        return Ok(Batched::alone(left));
    }
    let lines = store::lines_of_all(&txn, taken.iter().map(|t| t.1.id.as_str())).await?;
    let no_lines = Vec::new();
    let lines_of = |id: &str| lines.get(id).unwrap_or(&no_lines);
    // The jobs marked done before the numbers are taken: from there to the commit the batch
    // writes only what carries a number.
    let done: Vec<&str> = taken.iter().map(|t| t.0.id.as_str()).collect();
    store::jobs_done(&txn, &done, at).await?;
    let drafts: Vec<Draft<'_>> = taken
        .iter()
        .map(|(_, invoice, sub)| (invoice, *sub, lines_of(&invoice.id).as_slice()))
        .collect();
    let (finalized, next) = finalize_drafts(billing, &txn, &drafts, at).await?;
    save_finalized(&txn, &finalized, at).await?;
    finish(billing, txn, &finalized, &drafts, at).await?;
    tracing::debug!(finalized = done.len(), alone = left.len(), "bill-run batch");
    Ok(Batched { alone: left, next })
}

/// A finalizing batch's end: `invoice.finalized` for each of `finalized` (with the lines of its
/// draft, in `drafts`' order) recorded in its transaction, committed.
async fn finish(
    billing: &Billing,
    txn: DatabaseTransaction,
    finalized: &[invoices::Model],
    drafts: &[Draft<'_>],
    at: DateTime<Utc>,
) -> Result<(), BillingError> {
    let outs: Vec<InvoiceOut> = finalized
        .iter()
        .zip(drafts)
        .map(|(invoice, (_, _, lines))| invoice_out(invoice.clone(), lines.to_vec()))
        .collect();
    let events: Vec<Event<'_>> = outs
        .iter()
        .map(|i| Event::Invoice(InvoiceChange::Finalized, i))
        .collect();
    let core = &billing.core;
    core.outbox.record_all(&txn, &events, at).await?;
    core.commit(txn).await?;
    Ok(())
}

/// The invoices `jobs` are about and their subscriptions, by id; with `lock`, locked (the
/// invoices first, as a job alone locks them).
async fn invoices_and_subscriptions<C: sea_orm::ConnectionTrait>(
    db: &C,
    jobs: &[billing_jobs::Model],
    lock: bool,
) -> Result<InvoicesAndSubscriptions, DbErr> {
    let ids: Vec<&str> = jobs.iter().map(|j| j.subject_id.as_str()).collect();
    let invoices: HashMap<String, invoices::Model> =
        find_each::<invoices::Entity, _>(db, invoices::Column::Id, &ids, lock)
            .await?
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect();
    let sub_ids: Vec<&str> = invoices
        .values()
        .filter_map(|i| i.subscription_id.as_deref())
        .collect();
    let subs = find_each::<subscriptions::Entity, _>(db, subscriptions::Column::Id, &sub_ids, lock)
        .await?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    Ok((invoices, subs))
}

type InvoicesAndSubscriptions = (
    HashMap<String, invoices::Model>,
    HashMap<String, subscriptions::Model>,
);

/// Writes the finalized invoices' new state: each one's number, order and next attempt.
async fn save_finalized(
    txn: &DatabaseTransaction,
    finalized: &[invoices::Model],
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let shared: [Value; 2] = [
        sea_orm::ActiveEnum::to_value(&InvoiceStatus::Open).into(),
        at.into(),
    ];
    let rows: Vec<Vec<Value>> = finalized
        .iter()
        .map(|i| {
            vec![
                i.id.clone().into(),
                i.number.clone().into(),
                i.order_id.clone().into(),
                i.next_attempt_at.into(),
            ]
        })
        .collect();
    let set = "status = $1, finalized_at = $2, updated_at = $2, number = v.column2, \
               order_id = v.column3, next_attempt_at = v.column4";
    update_each(txn, "invoices", set, &shared, &rows).await?;
    Ok(())
}

/// Charges the invoices of `jobs` (all `charge`) that are plain (open and waiting for this
/// attempt, a saved payment method, off any test clock) together, through
/// [`Payments::charge_saved_all`](crate::payments::service::Payments), each with its job's
/// payment id, so a rerun meets the same charges. A decline counts its attempt as alone.
pub async fn charge_all(
    billing: &Billing,
    jobs: &[billing_jobs::Model],
    at: DateTime<Utc>,
) -> Result<Batched, BillingError> {
    let core = &billing.core;
    let (found, subs) = invoices_and_subscriptions(&core.db, jobs, false).await?;
    let return_url = invoicing::dunning::return_url(billing);
    let mut left = Vec::new();
    let mut taken = Vec::new();
    for job in jobs {
        let found = found.get(&job.subject_id).and_then(|invoice| {
            let sub = subs.get(invoice.subscription_id.as_deref()?)?;
            let plain = job.test_clock_id.is_none()
                && sub.test_clock_id.is_none()
                && invoice.status == InvoiceStatus::Open
                && invoice.next_attempt_at == Some(job.due_at);
            let charge = SavedCharge {
                user_id: invoice.user_id.clone(),
                order_id: invoice.order_id.clone()?,
                payment_id: store::job_payment_id(job),
                payment_method: sub.payment_method.clone()?,
                return_url: return_url.clone(),
                metadata: serde_json::json!({ "invoice_id": invoice.id }),
            };
            plain.then_some(charge)
        });
        match found {
            Some(charge) => taken.push((job, charge)),
            None => left.push(job.clone()),
        }
    }
    if taken.is_empty() {
        return Ok(Batched::alone(left));
    }
    let (taken, charges): (Vec<&billing_jobs::Model>, Vec<SavedCharge>) = taken.into_iter().unzip();
    let outcomes = billing
        .payments
        .charge_saved_all(&charges)
        .await
        .map_err(|e| {
            BillingError::Fault(crate::platform::Fault::Internal(anyhow::anyhow!("{e}")))
        })?;
    let mut done = Vec::new();
    for (job, outcome) in taken.into_iter().zip(outcomes) {
        let declined = match outcome {
            Charged::Recorded(payment) => invoicing::dunning::declined_reason(&payment),
            Charged::Refused(e) => match invoicing::dunning::refused_reason(&e) {
                Some(why) => Some(why),
                None => {
                    left.push(job.clone());
                    continue;
                }
            },
            Charged::NotPayable(e) => {
                tracing::info!(invoice_id = %job.subject_id, error = %e, "invoice's order not chargeable");
                None
            }
            Charged::Alone => {
                left.push(job.clone());
                continue;
            }
        };
        if let Some(why) = declined {
            invoicing::dunning::record_decline(billing, &job.subject_id, &why, at).await?;
        }
        done.push(job.id.as_str());
    }
    let txn = core.begin_batch().await?;
    store::jobs_done(&txn, &done, at).await?;
    txn.commit().await?;
    tracing::debug!(charged = done.len(), alone = left.len(), "bill-run batch");
    Ok(Batched::alone(left))
}
