//! What billing does on other services' events (the inbox's handlers call these):
//!
//! - `user.deleted`: the user's subscriptions end now (the unused part of a paid period is
//!   refunded, unpaid invoices voided);
//! - `wallet.insufficient_funds`: the user's active subscriptions are paused;
//! - `user.upgraded`: the user's active and trialing subscriptions move to the named plan, by
//!   the usual rule (an upgrade now with proration, anything else at the period's end);
//! - `wallet.balance_changed`: the user's open invoices in that currency whose charge failed
//!   are charged again at once.
//!
//! Each acts only on what is still to act on, so a second delivery changes nothing.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use shared::billing::{CancelSubscriptionIn, ChangePlanIn};
use shared::internal::Role;

use super::entities::{invoices, subscriptions};
use super::model::{BillingError, InvoiceStatus, SubscriptionStatus};
use super::{Billing, subscriptions as subs};
use crate::platform::Actor;

/// Who acts for an inbound event: a trusted caller.
fn event_actor() -> Actor {
    Actor {
        user_id: "inbound-event".to_owned(),
        roles: vec![Role::Service],
    }
}

async fn of_user(
    billing: &Billing,
    user_id: &str,
    statuses: &[SubscriptionStatus],
) -> Result<Vec<subscriptions::Model>, BillingError> {
    Ok(subscriptions::Entity::find()
        .filter(subscriptions::Column::UserId.eq(user_id))
        .filter(subscriptions::Column::Status.is_in(statuses.iter().copied()))
        .all(&billing.core.db)
        .await?)
}

/// Ends every subscription of a deleted user. Answers how many this call ended.
pub async fn user_deleted(billing: &Billing, user_id: &str) -> Result<usize, BillingError> {
    let live = [
        SubscriptionStatus::Incomplete,
        SubscriptionStatus::Trialing,
        SubscriptionStatus::Active,
        SubscriptionStatus::PastDue,
        SubscriptionStatus::Paused,
        SubscriptionStatus::Unpaid,
    ];
    let mut ended = 0;
    for sub in of_user(billing, user_id, &live).await? {
        let input = CancelSubscriptionIn {
            at_period_end: false,
            reason: Some("user deleted".to_owned()),
        };
        match subs::cancel_subscription(billing, &event_actor(), &sub.id, input).await {
            Ok(_) => ended += 1,
            // Ended meanwhile by something else.
            Err(BillingError::Conflict(..)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ended)
}

/// Pauses a user's active subscriptions. Answers how many this call paused.
pub async fn insufficient_funds(billing: &Billing, user_id: &str) -> Result<usize, BillingError> {
    let mut paused = 0;
    for sub in of_user(billing, user_id, &[SubscriptionStatus::Active]).await? {
        match subs::pause_or_resume(billing, &event_actor(), &sub.id, true).await {
            Ok(_) => paused += 1,
            Err(BillingError::Conflict(..)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(paused)
}

/// Moves a user's subscriptions to the newest active version of `plan_code`. Answers how
/// many this call moved (now or at their period's end).
pub async fn user_upgraded(
    billing: &Billing,
    user_id: &str,
    plan_code: &str,
) -> Result<usize, BillingError> {
    let live = [SubscriptionStatus::Active, SubscriptionStatus::Trialing];
    let subs_of_user = of_user(billing, user_id, &live).await?;
    if subs_of_user.is_empty() {
        return Ok(0);
    }
    let plan = super::plans::resolve(&billing.core.db, "data.plan_code", plan_code).await?;
    let mut moved = 0;
    for sub in subs_of_user {
        if sub.plan_id == plan.id || sub.pending_plan_id.as_deref() == Some(plan.id.as_str()) {
            continue; // this event was handled before
        }
        let input = ChangePlanIn {
            plan: plan.id.clone(),
            proration: None,
        };
        match subs::change_plan(billing, &event_actor(), &sub.id, input).await {
            Ok(_) => moved += 1,
            Err(BillingError::Conflict(..)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(moved)
}

/// Charges again, at once, a user's open invoices in `currency` whose charge was declined.
/// Answers how many charges it scheduled.
pub async fn balance_changed(
    billing: &Billing,
    user_id: &str,
    currency: &str,
) -> Result<usize, BillingError> {
    let core = &billing.core;
    let failed = invoices::Entity::find()
        .filter(invoices::Column::UserId.eq(user_id))
        .filter(invoices::Column::Currency.eq(currency.to_ascii_lowercase()))
        .filter(invoices::Column::Status.eq(InvoiceStatus::Open))
        .filter(invoices::Column::AttemptCount.gt(0))
        .all(&core.db)
        .await?;
    let mut scheduled = 0;
    for invoice in failed {
        let Some(sub_id) = invoice.subscription_id.as_deref() else {
            continue;
        };
        let Some(sub) = subscriptions::Entity::find_by_id(sub_id)
            .one(&core.db)
            .await?
        else {
            continue;
        };
        if sub.payment_method.is_none() {
            continue;
        }
        if super::invoices::charge_now(billing, &invoice.id, sub.test_clock_id.as_deref()).await? {
            scheduled += 1;
        }
    }
    Ok(scheduled)
}
