//! The saga worker: on every replica, claims due steps under a lease and makes their call to
//! the inventory service; an answer moves the saga on, a failure puts the step back with a
//! doubling delay. Safe to run twice and on two replicas at once: a claim is a conditional
//! update, and every call is idempotent by the reservation id.

use std::time::Duration;

use chrono::{DateTime, Utc};

use sea_orm::DbErr;
use shared::api::RefundIn;
use tokio_util::sync::CancellationToken;

use super::entities::inventory_sagas;
use super::external::{CallError, LatePayment};
use super::{Saga, state, step_key, store};
use crate::inventory::Want;
use crate::orders;
use crate::payments::model::PaymentId;
use crate::platform::db::after;
use crate::platform::retry_delay;
use crate::refunds::model::RefundError;

/// How often the worker looks without being woken.
const POLL: Duration = Duration::from_millis(500);
const BATCH: u64 = 50;

pub async fn run_loop(saga: Saga, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = saga.due.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
        loop {
            match run_due(&saga, BATCH).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "inventory saga round failed");
                    break;
                }
            }
        }
    }
}

/// Takes the steps due now, at most `batch`; answers how many this call took.
pub async fn run_due(saga: &Saga, batch: u64) -> Result<usize, DbErr> {
    let db = &saga.core.db;
    let at = saga.core.now();
    let mut taken = 0;
    for row in store::due(db, at, batch).await? {
        if store::claim(db, &row, after(at, saga.lease), at).await? {
            step(saga, row).await?;
            taken += 1;
        }
    }
    Ok(taken)
}

/// Where a step leads.
enum Outcome {
    /// The next state, due at once.
    Next(&'static str),
    /// The same step again later, with why it failed.
    Retry(String),
    /// Nothing to do yet: look again then.
    Wait(DateTime<Utc>),
}

use Outcome::{Next, Retry, Wait};

async fn step(saga: &Saga, row: inventory_sagas::Model) -> Result<(), DbErr> {
    let outcome = match row.state.as_str() {
        // A checkout that died mid-call (it made no payment), or one that ended unpaid.
        state::RESERVING | state::RELEASING => release(saga, &row).await,
        state::AWAITING_PAYMENT => awaiting(saga, &row).await?,
        state::COMMITTING => match saga
            .external
            .commit(&row.reservation_id, &key(&row, "commit"))
            .await
        {
            Ok(()) => Next(state::DONE),
            Err(CallError::Unknown | CallError::Conflict(_)) => late_payment(saga, &row).await?,
            Err(e) => Retry(e.to_string()),
        },
        state::REFUNDING => refund(saga, &row).await?,
        _ => return Ok(()),
    };
    let now = saga.core.now();
    let from = [row.state.as_str()];
    match outcome {
        Next(to) => {
            store::move_saga(&saga.core.db, &row.payment_id, &from, to, now, now).await?;
            if to == state::REQUIRES_ACTION {
                metrics::counter!("inventory_saga_requires_action_total").increment(1);
            }
        }
        Retry(why) => {
            let failures = u32::try_from(row.attempts + 1).unwrap_or(u32::MAX);
            let delay = retry_delay(
                failures,
                Duration::from_secs(1),
                saga.external.config.retry_max,
            );
            tracing::warn!(payment_id = %row.payment_id, step = %row.state, error = %why, "inventory saga step failed; retrying");
            store::retry_later(
                &saga.core.db,
                &row.payment_id,
                &row.state,
                after(now, delay),
                &why,
                now,
            )
            .await?;
        }
        Wait(until) => {
            store::retry_later(
                &saga.core.db,
                &row.payment_id,
                &row.state,
                until,
                "waiting for the payment",
                now,
            )
            .await?;
        }
    }
    Ok(())
}

fn key(row: &inventory_sagas::Model, step: &str) -> String {
    step_key(&row.order_id, step, &row.payment_id)
}

/// Releases the reservation (idempotent; one the service never made is released already).
async fn release(saga: &Saga, row: &inventory_sagas::Model) -> Outcome {
    match saga
        .external
        .release(&row.reservation_id, &key(row, "release"))
        .await
    {
        Ok(()) | Err(CallError::Unknown) => Next(state::RELEASED),
        Err(CallError::Conflict(what)) => {
            tracing::error!(payment_id = %row.payment_id, %what,
                "the inventory service says a reservation to release was committed; it needs a person");
            Next(state::REQUIRES_ACTION)
        }
        Err(e) => Retry(e.to_string()),
    }
}

/// A saga still waiting for its payment when it was due to be looked at: its checkout died
/// before making the payment (release), or the payment moved without the saga hearing of it
/// (settle it), or it is still open (look again when it lapses).
async fn awaiting(saga: &Saga, row: &inventory_sagas::Model) -> Result<Outcome, DbErr> {
    use crate::payments::model::PaymentStatus as P;
    let payment = crate::payments::store::find(&saga.core.db, &row.payment_id).await?;
    Ok(match payment.map(|p| (p.status, p.expires_at)) {
        None => release(saga, row).await,
        Some((P::Pending, expires_at)) => Wait(after(
            expires_at.max(saga.core.now()),
            Duration::from_secs(60),
        )),
        Some((P::Succeeded | P::PartiallyRefunded | P::Refunded, _)) => Next(state::COMMITTING),
        Some(_) => release(saga, row).await,
    })
}

/// The payment succeeded after its reservation lapsed (or was released): reserve again and
/// commit, or refund, as `INVENTORY_LATE_PAYMENT` says.
async fn late_payment(saga: &Saga, row: &inventory_sagas::Model) -> Result<Outcome, DbErr> {
    metrics::counter!("inventory_late_payments_total").increment(1);
    if saga.external.config.late_payment == LatePayment::Refund {
        return Ok(Next(state::REFUNDING));
    }
    let again = format!("{}-again", super::reservation_id(&row.payment_id));
    if row.reservation_id == again {
        // Reserved again already, and that lapsed too: give the money back.
        return Ok(Next(state::REFUNDING));
    }
    let lines: Vec<Want> = row
        .lines
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|l| {
                    Some(Want {
                        sku: l["sku"].as_str()?.to_owned(),
                        quantity: l["quantity"].as_i64()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let key = step_key(&row.order_id, "reserve-again", &row.payment_id);
    let until = after(saga.core.now(), Duration::from_secs(600));
    match saga.external.reserve(&again, &key, &lines, until).await {
        Ok(_) => {}
        Err(CallError::OutOfStock(shorts)) => {
            tracing::warn!(payment_id = %row.payment_id, short = %crate::inventory::describe(&shorts),
                "a late payment's stock is gone; refunding it");
            return Ok(Next(state::REFUNDING));
        }
        Err(e) => return Ok(Retry(e.to_string())),
    }
    store::set_reservation(&saga.core.db, &row.payment_id, &again).await?;
    let key = step_key(&row.order_id, "commit-again", &row.payment_id);
    Ok(match saga.external.commit(&again, &key).await {
        Ok(()) => Next(state::DONE),
        // Held again: the next try commits it.
        Err(e) => Retry(e.to_string()),
    })
}

/// Refunds the whole payment (its key makes a retry find the same refund). A refund the
/// provider refuses leaves the order `requires_action`.
async fn refund(saga: &Saga, row: &inventory_sagas::Model) -> Result<Outcome, DbErr> {
    let Some(payment_id) = PaymentId::parse(&row.payment_id) else {
        return Ok(Next(state::REQUIRES_ACTION));
    };
    let input = RefundIn {
        amount: None,
        reason: Some("the stock was gone when the payment arrived".to_owned()),
    };
    let key = step_key(&row.order_id, "refund", &row.payment_id);
    Ok(
        match saga
            .refunds
            .refund_as_system("inventory", payment_id, input, key)
            .await
        {
            Ok(_) | Err(RefundError::FullyRefunded) => Next(state::REFUNDED),
            Err(
                e @ (RefundError::Refused { .. }
                | RefundError::NotRefundable(_)
                | RefundError::Invalid(_)
                | RefundError::ExceedsRemaining { .. }),
            ) => {
                let reason = format!("paid without stock, and the refund failed: {e}");
                needs_a_person(saga, &row.order_id, &reason).await?;
                Next(state::REQUIRES_ACTION)
            }
            Err(e) => Retry(e.to_string()),
        },
    )
}

/// Moves the order to `requires_action` with why.
async fn needs_a_person(saga: &Saga, order_id: &str, reason: &str) -> Result<(), DbErr> {
    let core = &saga.core;
    let txn = core.begin().await?;
    let transition = orders::store::Transition {
        reason: Some(reason),
        ..orders::store::Transition::system(orders::model::OrderStatus::RequiresAction)
    };
    orders::store::move_order(&txn, &core.outbox, order_id, transition, core.now()).await?;
    core.commit(txn).await
}
