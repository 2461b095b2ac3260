//! Changing a subscription: cancel, pause and resume, another plan.

use super::*;

/// A write transaction holding the subscription the actor may see, locked.
async fn lock_visible(
    billing: &Billing,
    actor: &Actor,
    id: &str,
) -> Result<(DatabaseTransaction, subscriptions::Model), BillingError> {
    let found = find_visible(billing, actor, id).await?;
    let txn = billing.core.begin().await?;
    let sub = store::lock_subscription(&txn, &found.id)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("subscription {id}")))?;
    Ok((txn, sub))
}

/// Cancels now (the unused part of a paid period is refunded) or at the period's end.
pub async fn cancel_subscription(
    billing: &Billing,
    actor: &Actor,
    id: &str,
    input: CancelSubscriptionIn,
) -> Result<SubscriptionOut, BillingError> {
    let mut errors = Vec::new();
    if let Some(reason) = &input.reason {
        validate::text(&mut errors, "reason", reason, 500);
    }
    validate::finish(errors).map_err(BillingError::Invalid)?;
    let core = &billing.core;
    let (txn, mut sub) = lock_visible(billing, actor, id).await?;
    if sub.status.is_ended() {
        return Err(BillingError::Conflict(
            "subscription_ended",
            format!(
                "The subscription is {}; it cannot be canceled again",
                sub.status
            ),
        ));
    }
    let at = clocks::now_of(&txn, core, sub.test_clock_id.as_deref()).await?;
    sub.cancellation_reason = input.reason.clone().or(sub.cancellation_reason);
    if input.at_period_end {
        sub.cancel_at_period_end = true;
        sub.updated_at = at;
        store::save_subscription(&txn, &sub).await?;
        record_subscription(&txn, &core.outbox, SubscriptionChange::Updated, &sub, at).await?;
        core.commit(txn).await?;
        return get_by_id(billing, &sub.id).await;
    }
    let refund = paid_period_credit(&txn, &sub, at).await?;
    let voided = end_now(&txn, &core.outbox, &mut sub, "requested", at).await?;
    core.commit(txn).await?;
    for invoice in &voided {
        invoicing::close_orders_of(billing, invoice).await?;
    }
    for (invoice_id, order_id, amount) in refund {
        crate::billing::refunds::refund_unused(billing, &invoice_id, &order_id, amount).await;
    }
    get_by_id(billing, &sub.id).await
}

/// What paid for the rest of the current period, and how much of each is unused at `at`: the
/// period's paid invoice, and any proration invoice since (each prorated over its own
/// period, so together they give back the unused part of the plan in force now). Answers
/// (invoice, order, amount) for each with something left.
async fn paid_period_credit(
    txn: &DatabaseTransaction,
    sub: &subscriptions::Model,
    at: DateTime<Utc>,
) -> Result<Vec<(String, String, i64)>, DbErr> {
    let paid = invoices::Entity::find()
        .filter(invoices::Column::SubscriptionId.eq(sub.id.as_str()))
        .filter(invoices::Column::Status.eq(InvoiceStatus::Paid))
        .filter(invoices::Column::PeriodStart.gte(sub.current_period_start))
        .filter(invoices::Column::PeriodEnd.eq(sub.current_period_end))
        .filter(invoices::Column::OrderId.is_not_null())
        .all(txn)
        .await?;
    Ok(paid
        .into_iter()
        .filter(|i| i.total > 0)
        .filter_map(|i| {
            let unused = unused_share(i.total, i.period_start, i.period_end, at);
            let order = i.order_id.clone()?;
            (unused > 0).then_some((i.id, order, unused))
        })
        .collect())
}

/// Pauses (no invoices while paused) or resumes a subscription.
pub async fn pause_or_resume(
    billing: &Billing,
    actor: &Actor,
    id: &str,
    pause: bool,
) -> Result<SubscriptionOut, BillingError> {
    let core = &billing.core;
    let (txn, mut sub) = lock_visible(billing, actor, id).await?;
    let at = clocks::now_of(&txn, core, sub.test_clock_id.as_deref()).await?;
    let (from, to, change) = if pause {
        (
            SubscriptionStatus::Active,
            SubscriptionStatus::Paused,
            SubscriptionChange::Paused,
        )
    } else {
        (
            SubscriptionStatus::Paused,
            SubscriptionStatus::Active,
            SubscriptionChange::Resumed,
        )
    };
    if sub.status != from {
        return Err(BillingError::Conflict(
            if pause {
                "subscription_not_active"
            } else {
                "subscription_not_paused"
            },
            format!(
                "The subscription is {}; only an {from} subscription can become {to}",
                sub.status
            ),
        ));
    }
    sub.status = to;
    sub.paused_at = pause.then_some(at);
    sub.updated_at = at;
    store::save_subscription(&txn, &sub).await?;
    record_subscription(&txn, &core.outbox, change, &sub, at).await?;
    core.commit(txn).await?;
    get_by_id(billing, &sub.id).await
}

/// Sets the saved payment method the subscription's invoices are charged to. Its invoices
/// still open (a first invoice, or one whose charges were declined) are charged to it at once,
/// as a customer who has just given a new card expects.
pub async fn set_payment_method(
    billing: &Billing,
    actor: &Actor,
    id: &str,
    input: PaymentMethodIn,
) -> Result<SubscriptionOut, BillingError> {
    let mut errors = Vec::new();
    validate::payment_method(&mut errors, &input.payment_method);
    validate::finish(errors).map_err(BillingError::Invalid)?;
    let core = &billing.core;
    let (txn, mut sub) = lock_visible(billing, actor, id).await?;
    if matches!(
        sub.status,
        SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
    ) {
        return Err(BillingError::Conflict(
            "subscription_ended",
            format!("The subscription is {}; it bills nothing more", sub.status),
        ));
    }
    let clock = sub.test_clock_id.clone();
    let at = clocks::now_of(&txn, core, clock.as_deref()).await?;
    sub.payment_method = Some(input.payment_method);
    sub.updated_at = at;
    store::save_subscription(&txn, &sub).await?;
    record_subscription(&txn, &core.outbox, SubscriptionChange::Updated, &sub, at).await?;
    core.commit(txn).await?;
    for invoice in store::unpaid_invoices(&core.db, &sub.id).await? {
        if invoice.status == InvoiceStatus::Open && invoice.order_id.is_some() {
            invoicing::charge_now(billing, &invoice.id, clock.as_deref()).await?;
        }
    }
    get_by_id(billing, &sub.id).await
}

/// Moves a subscription to another plan of the same currency. An upgrade (a higher price per
/// day) applies now by default, with a prorated credit for the old plan's unused part and a
/// prorated charge for the new one on one invoice, finalized at once; anything else (and any
/// change of interval) waits for the period's end.
pub async fn change_plan(
    billing: &Billing,
    actor: &Actor,
    id: &str,
    input: ChangePlanIn,
) -> Result<SubscriptionOut, BillingError> {
    let core = &billing.core;
    let now_asked = match input.proration.as_deref() {
        None => None,
        Some("now") => Some(true),
        Some("period_end") => Some(false),
        Some(_) => {
            return Err(BillingError::invalid(
                "proration",
                shared::problem::one_of(["now", "period_end"]),
            ));
        }
    };
    let new_plan = plan_store::resolve(&core.db, "plan", &input.plan).await?;
    let (txn, mut sub) = lock_visible(billing, actor, id).await?;
    if !matches!(
        sub.status,
        SubscriptionStatus::Active | SubscriptionStatus::Trialing
    ) {
        return Err(BillingError::Conflict(
            "subscription_not_active",
            format!(
                "The subscription is {}; only an active or trialing subscription changes plan",
                sub.status
            ),
        ));
    }
    let old_plan = plan_store::find(&txn, &sub.plan_id)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("plan {}", sub.plan_id)))?;
    if new_plan.currency != old_plan.currency {
        return Err(BillingError::invalid(
            "plan",
            format!(
                "must be billed in {}, as the current plan",
                old_plan.currency
            ),
        ));
    }
    if new_plan.id == old_plan.id {
        return Err(BillingError::invalid("plan", "is the current plan"));
    }
    let at = clocks::now_of(&txn, core, sub.test_clock_id.as_deref()).await?;
    let same_cadence = cadence(&new_plan) == cadence(&old_plan);
    let upgrade = same_cadence
        && is_upgrade(
            (old_plan.amount, cadence(&old_plan)),
            (new_plan.amount, cadence(&new_plan)),
        );
    let apply_now = match now_asked {
        Some(true) if !upgrade => {
            return Err(BillingError::invalid(
                "proration",
                "`now` is for an upgrade to a plan of the same interval; this change applies at the period's end",
            ));
        }
        Some(now) => now,
        None => upgrade,
    };
    let outbox = &core.outbox;
    if !apply_now {
        sub.pending_plan_id = Some(new_plan.id.clone());
        sub.updated_at = at;
        store::save_subscription(&txn, &sub).await?;
        record_subscription(&txn, outbox, SubscriptionChange::Updated, &sub, at).await?;
        core.commit(txn).await?;
        return get_by_id(billing, &sub.id).await;
    }
    sub.plan_id = new_plan.id.clone();
    sub.pending_plan_id = None;
    sub.updated_at = at;
    store::save_subscription(&txn, &sub).await?;
    if sub.status == SubscriptionStatus::Active {
        let (start, end) = (sub.current_period_start, sub.current_period_end);
        let credit = unused_share(old_plan.amount, start, end, at);
        let charge = unused_share(new_plan.amount, start, end, at);
        let lines = vec![
            Line {
                kind: kind::PRORATION_CREDIT,
                description: format!("Unused time on {} ({})", old_plan.name, old_plan.code),
                plan_id: Some(old_plan.id.clone()),
                amount: -credit,
                period: (at, end),
            },
            Line {
                kind: kind::PRORATION_CHARGE,
                description: format!("Remaining time on {} ({})", new_plan.name, new_plan.code),
                plan_id: Some(new_plan.id.clone()),
                amount: charge,
                period: (at, end),
            },
        ];
        let invoice = invoicing::draft(
            billing,
            &txn,
            &sub,
            (reason::UPDATE, (at, end)),
            lines,
            (at, at),
        )
        .await?;
        if store::mark_billed(&txn, &sub.id, (at, end), "proration", &invoice.id).await? {
            invoicing::finalize(billing, &txn, &invoice.id, at).await?;
        } else {
            return Err(BillingError::Conflict(
                "plan_change_conflict",
                "This change was just made; look at the subscription".to_owned(),
            ));
        }
    }
    record_subscription(&txn, outbox, SubscriptionChange::Updated, &sub, at).await?;
    core.commit(txn).await?;
    jobs::run_now(billing, sub.test_clock_id.as_deref()).await;
    get_by_id(billing, &sub.id).await
}
