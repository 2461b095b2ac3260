//! Dunning: charging an invoice's saved payment method, counting declines, retrying on the
//! configured schedule, then the end policy.

use super::*;

/// What charging an invoice's saved payment method came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Charge {
    /// Paid (now or before): nothing more to do.
    Paid,
    /// Not chargeable (not open, no payment method): nothing to do.
    Skipped,
    /// Declined: a dunning attempt was counted.
    Declined(String),
}

/// Charges an open invoice now rather than at its scheduled attempt (which, when due, is then
/// skipped): after a wallet's top-up, or a new payment method. False when it is no longer
/// open.
pub async fn charge_now(
    billing: &Billing,
    invoice_id: &str,
    clock: Option<&str>,
) -> Result<bool, BillingError> {
    let core = &billing.core;
    let at = crate::billing::clocks::now_of(&core.db, core, clock).await?;
    let txn = core.begin().await?;
    let moved = invoices::Entity::update_many()
        .col_expr(invoices::Column::NextAttemptAt, Some(at).into())
        .filter(invoices::Column::Id.eq(invoice_id))
        .filter(invoices::Column::Status.eq(InvoiceStatus::Open))
        .exec(&txn)
        .await?;
    if moved.rows_affected == 0 {
        return Ok(false);
    }
    store::schedule(
        &txn,
        crate::billing::jobs::CHARGE,
        invoice_id,
        at,
        clock,
        at,
    )
    .await?;
    core.commit(txn).await?;
    crate::billing::jobs::run_now(billing, clock).await;
    Ok(true)
}

/// Why a charge recorded as `payment` did not pay (declined, or waiting on the customer), or
/// none when it succeeded.
pub fn declined_reason(payment: &shared::api::PaymentOut) -> Option<String> {
    match payment.status.as_str() {
        "succeeded" => None,
        "failed" => Some(
            payment
                .failure_reason
                .clone()
                .unwrap_or_else(|| "declined".to_owned()),
        ),
        other => Some(format!("the payment is {other} and needs the customer")),
    }
}

/// Why a provider refused a charge, when that counts as a decline (not an outage, which is
/// tried again).
pub fn refused_reason(error: &ProviderError) -> Option<String> {
    match error {
        ProviderError::Rejected { code, message } => Some(format!("{code}: {message}")),
        ProviderError::Unsupported(why) => Some(why.clone()),
        _ => None,
    }
}

/// Where a customer would come back to from a charge that needed them.
pub fn return_url(billing: &Billing) -> String {
    billing
        .public_base_url
        .join("billing/return")
        .map(String::from)
        .unwrap_or_else(|_| billing.public_base_url.to_string())
}

/// Charges an open invoice's saved payment method through its order (a server-side checkout):
/// a success pays the order and so the invoice, in the payment's transaction; a decline counts
/// an attempt and schedules the next per the dunning schedule. A provider that did not answer
/// is an error: the job is tried again, and no attempt is counted.
///
/// `due` is the attempt's time: an attempt the invoice no longer waits for (another was made
/// since, e.g. at once after a wallet's top-up) is skipped. `job`: the charge job, whose id
/// gives the attempt's payment id, the same on its reruns.
pub async fn charge(
    billing: &Billing,
    job: &crate::billing::entities::billing_jobs::Model,
    at: DateTime<Utc>,
) -> Result<Charge, BillingError> {
    let (invoice_id, due) = (job.subject_id.as_str(), job.due_at);
    let core = &billing.core;
    let Some(invoice) = invoices::Entity::find_by_id(invoice_id)
        .one(&core.db)
        .await?
    else {
        return Ok(Charge::Skipped);
    };
    let sub = match &invoice.subscription_id {
        Some(id) => {
            crate::billing::entities::subscriptions::Entity::find_by_id(id.as_str())
                .one(&core.db)
                .await?
        }
        None => None,
    };
    let (Some(order_id), Some(method)) = (
        invoice.order_id.as_deref().and_then(OrderId::parse),
        sub.as_ref().and_then(|s| s.payment_method.clone()),
    ) else {
        return Ok(Charge::Skipped);
    };
    if invoice.status == InvoiceStatus::Open && invoice.next_attempt_at != Some(due) {
        return Ok(Charge::Skipped);
    }
    if invoice.status != InvoiceStatus::Open {
        return Ok(if invoice.status == InvoiceStatus::Paid {
            Charge::Paid
        } else {
            Charge::Skipped
        });
    }
    let back = return_url(billing);
    let owner = Actor {
        user_id: invoice.user_id.clone(),
        roles: Vec::new(),
    };
    let input = CheckoutIn {
        provider: None,
        success_url: back.clone(),
        cancel_url: back,
        payment_method: Some(method),
        metadata: Some(serde_json::json!({ "invoice_id": invoice.id })),
    };
    // The attempt's payment id, the same on every run of the job.
    let payment_id = store::job_payment_id(job);
    let declined = match billing
        .payments
        .checkout_as(&owner, &order_id, input, &Nothing, Some(payment_id))
        .await
    {
        Ok(payment) => match declined_reason(&payment) {
            None => return Ok(Charge::Paid),
            Some(why) => why,
        },
        Err(PaymentError::JustPaid(_)) => return Ok(Charge::Paid),
        Err(PaymentError::Order(e)) => {
            // The order is no longer payable: paid, or ended with the invoice.
            tracing::info!(invoice_id, error = %e, "invoice's order not chargeable");
            return Ok(Charge::Skipped);
        }
        Err(PaymentError::Provider(e)) if refused_reason(&e).is_some() => {
            refused_reason(&e).unwrap_or_default()
        }
        Err(e) => {
            return Err(BillingError::Fault(crate::platform::Fault::Internal(
                anyhow::anyhow!("charging invoice {invoice_id}: {e}"),
            )));
        }
    };
    record_decline(billing, invoice_id, &declined, at).await?;
    Ok(Charge::Declined(declined))
}

/// A charge of an open invoice was declined (`error` says why): the attempt counted, the next
/// one scheduled or the dunning's end applied, in a transaction of its own.
pub async fn record_decline(
    billing: &Billing,
    invoice_id: &str,
    error: &str,
    at: DateTime<Utc>,
) -> Result<(), BillingError> {
    let core = &billing.core;
    let txn = core.begin().await?;
    let ended = declined_in(billing, &txn, invoice_id, error, at).await?;
    core.commit(txn).await?;
    if let Some(ended) = ended {
        close_orders_of(billing, &ended).await?;
    }
    Ok(())
}

/// A charge of an open invoice was declined: the attempt is counted, `invoice.payment_failed`;
/// the next one is scheduled, or the dunning's end applies. Answers the invoice if that ended
/// it (its order is to be closed).
async fn declined_in(
    billing: &Billing,
    txn: &DatabaseTransaction,
    invoice_id: &str,
    error: &str,
    at: DateTime<Utc>,
) -> Result<Option<invoices::Model>, DbErr> {
    let outbox = &billing.core.outbox;
    let Some(mut invoice) = store::lock_invoice(txn, invoice_id).await? else {
        return Ok(None);
    };
    if invoice.status != InvoiceStatus::Open {
        return Ok(None);
    }
    invoice.attempt_count += 1;
    invoice.last_error = Some(error.chars().take(500).collect());
    invoice.updated_at = at;
    invoice.next_attempt_at = None;
    let sub = match &invoice.subscription_id {
        Some(id) => store::lock_subscription(txn, id).await?,
        None => None,
    };
    let Some(mut sub) = sub else {
        store::save_invoice(txn, &invoice).await?;
        record_invoice(txn, outbox, InvoiceChange::PaymentFailed, &invoice, at).await?;
        return Ok(None);
    };
    // A first invoice is not retried: the subscription stays incomplete until it expires.
    let retries = if sub.status == SubscriptionStatus::Incomplete {
        &[][..]
    } else {
        &billing.config.retry_schedule[..]
    };
    let origin = invoice.finalized_at.unwrap_or(at);
    let done = usize::try_from(invoice.attempt_count - 1).unwrap_or(usize::MAX);
    let next = retries.get(done).map(|delay| after(origin, *delay).max(at));
    invoice.next_attempt_at = next;
    if let Some(next) = next {
        let clock = sub.test_clock_id.as_deref();
        store::schedule(
            txn,
            crate::billing::jobs::CHARGE,
            &invoice.id,
            next,
            clock,
            at,
        )
        .await?;
    }
    store::save_invoice(txn, &invoice).await?;
    record_invoice(txn, outbox, InvoiceChange::PaymentFailed, &invoice, at).await?;
    if sub.status == SubscriptionStatus::Active {
        sub.status = SubscriptionStatus::PastDue;
        sub.updated_at = at;
        store::save_subscription(txn, &sub).await?;
        record_subscription(txn, outbox, SubscriptionChange::PastDue, &sub, at).await?;
    }
    if next.is_some() || sub.status == SubscriptionStatus::Incomplete {
        return Ok(None);
    }
    match billing.config.dunning_end {
        DunningEnd::PastDue => Ok(None),
        DunningEnd::Unpaid => {
            if sub.status == SubscriptionStatus::PastDue {
                sub.status = SubscriptionStatus::Unpaid;
                sub.updated_at = at;
                store::save_subscription(txn, &sub).await?;
                record_subscription(txn, outbox, SubscriptionChange::Updated, &sub, at).await?;
            }
            Ok(None)
        }
        DunningEnd::Cancel => {
            let ended = end_invoice(txn, outbox, invoice, InvoiceStatus::Uncollectible, at).await?;
            if !sub.status.is_ended() {
                crate::billing::subscriptions::end_now(txn, outbox, &mut sub, "payment_failed", at)
                    .await?;
            }
            Ok(Some(ended))
        }
    }
}
