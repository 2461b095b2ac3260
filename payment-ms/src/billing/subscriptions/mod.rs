//! Subscriptions: created by a user for themself or by a trusted caller for anyone; canceled
//! now or at the period's end, paused and resumed, moved to another plan. Renewals and the rest
//! of the clock's work are in `jobs`.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};
use serde::Deserialize;
use shared::billing::{
    CancelSubscriptionIn, ChangePlanIn, PaymentMethodIn, SubscriptionIn, SubscriptionOut,
};
use shared::{FieldError, ids};

use super::entities::{invoices, plans, subscriptions};
use super::invoices::{Line, kind, reason};
use super::model::{
    BillingError, InvoiceStatus, SubscriptionId, SubscriptionStatus, cadence, schedule,
    subscription_out,
};
use super::periods::{is_upgrade, unused_share, zone};
use super::{Billing, clocks, invoices as invoicing, jobs, plans as plan_store, store};
use crate::events::{Event, Outbox, SubscriptionChange};
use crate::platform::db::after;
use crate::platform::pagination::{Page, PageRequest};
use crate::platform::{Actor, validate};

const MAX_TRIAL_DAYS: i64 = 730;

/// Records a subscription event with the subscription as it now is.
pub async fn record_subscription(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    change: SubscriptionChange,
    sub: &subscriptions::Model,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let plan = plans::Entity::find_by_id(sub.plan_id.as_str())
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("plan {}", sub.plan_id)))?;
    super::totals::record_mrr(txn, sub, &plan, at).await?;
    let latest = store::latest_open_invoice(txn, &sub.id)
        .await?
        .map(|i| i.id);
    let out = subscription_out(sub.clone(), plan, latest);
    outbox
        .record(txn, Event::Subscription(change, &out), at)
        .await?;
    Ok(())
}

async fn load_out<C: sea_orm::ConnectionTrait>(
    db: &C,
    sub: subscriptions::Model,
) -> Result<SubscriptionOut, DbErr> {
    let plan = plans::Entity::find_by_id(sub.plan_id.as_str())
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("plan {}", sub.plan_id)))?;
    let latest = store::latest_open_invoice(db, &sub.id).await?.map(|i| i.id);
    Ok(subscription_out(sub, plan, latest))
}

/// Subscribes a user to a plan. With a trial: `trialing` until it ends, then billed. Without:
/// `incomplete` until the first invoice (finalized at once) is paid; a free plan is active at
/// once.
pub async fn create_subscription(
    billing: &Billing,
    actor: &Actor,
    input: SubscriptionIn,
) -> Result<SubscriptionOut, BillingError> {
    let core = &billing.core;
    let mut errors = Vec::new();
    let user_id = input
        .user_id
        .as_deref()
        .unwrap_or(&actor.user_id)
        .trim()
        .to_owned();
    validate::text(&mut errors, "user_id", &user_id, 255);
    let zone_name = input.time_zone.as_deref().unwrap_or("UTC").to_owned();
    if zone(&zone_name).is_none() {
        errors.push(FieldError::new(
            "time_zone",
            "must be an IANA time zone such as Europe/Paris",
        ));
    }
    if let Some(method) = &input.payment_method {
        validate::payment_method(&mut errors, method);
    }
    if let Some(days) = input.trial_days
        && !(0..=MAX_TRIAL_DAYS).contains(&days)
    {
        errors.push(FieldError::new(
            "trial_days",
            format!("must be between 0 and {MAX_TRIAL_DAYS}"),
        ));
    }
    validate::metadata(&mut errors, &input.metadata);
    validate::finish(errors).map_err(BillingError::Invalid)?;
    if user_id != actor.user_id && !actor.is_trusted() {
        return Err(BillingError::Forbidden(
            "Subscribing another user needs the service or admin role".to_owned(),
        ));
    }
    let plan = plan_store::resolve(&core.db, "plan", &input.plan).await?;
    let clock = match &input.test_clock {
        None => None,
        Some(id) => Some(clocks::usable(billing, actor, id).await?),
    };
    let at = clock.as_ref().map_or_else(|| core.now(), |c| c.frozen_time);
    let trial_days = input.trial_days.unwrap_or(i64::from(plan.trial_days));
    let trial_end = match trial_days {
        0 => None,
        days => Some(
            at.checked_add_signed(chrono::Duration::days(days))
                .ok_or_else(|| BillingError::invalid("trial_days", "runs past the calendar"))?,
        ),
    };
    let mut sub = subscriptions::Model {
        id: ids::new_id(ids::SUBSCRIPTION),
        user_id,
        plan_id: plan.id.clone(),
        status: if trial_end.is_some() {
            SubscriptionStatus::Trialing
        } else {
            SubscriptionStatus::Incomplete
        },
        time_zone: zone_name,
        billing_anchor: trial_end.unwrap_or(at),
        current_period_start: at,
        current_period_end: at,
        trial_end,
        cancel_at_period_end: false,
        cancellation_reason: None,
        canceled_at: None,
        ended_at: None,
        pending_plan_id: None,
        paused_at: None,
        payment_method: input.payment_method,
        test_clock_id: clock.map(|c| c.id),
        metadata: input.metadata.unwrap_or_else(|| serde_json::json!({})),
        created_at: at,
        updated_at: at,
        mrr: 0,
    };
    let periods = schedule(&sub, &plan);
    sub.current_period_end = match trial_end {
        Some(end) => end,
        None => periods
            .boundary(1)
            .ok_or_else(|| BillingError::invalid("plan", "its periods run past the calendar"))?,
    };
    let clock_id = sub.test_clock_id.clone();
    let txn = core.begin().await?;
    subscriptions::Entity::insert(sea_orm::IntoActiveModel::into_active_model(sub.clone()))
        .exec_without_returning(&txn)
        .await?;
    super::totals::count_new(&txn, std::slice::from_ref(&sub)).await?;
    record_subscription(&txn, &core.outbox, SubscriptionChange::Created, &sub, at).await?;
    let clock_ref = clock_id.as_deref();
    store::schedule(
        &txn,
        jobs::RENEW,
        &sub.id,
        sub.current_period_end,
        clock_ref,
        at,
    )
    .await?;
    if let Some(end) = trial_end {
        let notice = after(at, billing.config.trial_notice);
        let notice_at = end - (notice - at);
        if notice_at > at {
            store::schedule(&txn, jobs::TRIAL_ENDING, &sub.id, notice_at, clock_ref, at).await?;
        }
    } else {
        let period = (sub.current_period_start, sub.current_period_end);
        let line = Line {
            kind: kind::RECURRING,
            description: format!("{} ({})", plan.name, plan.code),
            plan_id: Some(plan.id.clone()),
            amount: plan.amount,
            period,
        };
        let invoice = invoicing::draft(
            billing,
            &txn,
            &sub,
            (reason::CREATE, period),
            vec![line],
            (at, at),
        )
        .await?;
        store::mark_billed(&txn, &sub.id, period, kind::RECURRING, &invoice.id).await?;
        invoicing::finalize(billing, &txn, &invoice.id, at).await?;
        let expiry = after(at, billing.config.incomplete_ttl);
        store::schedule(
            &txn,
            jobs::EXPIRE_INCOMPLETE,
            &sub.id,
            expiry,
            clock_ref,
            at,
        )
        .await?;
    }
    core.commit(txn).await?;
    jobs::run_now(billing, clock_id.as_deref()).await;
    get_by_id(billing, &sub.id).await
}

async fn get_by_id(billing: &Billing, id: &str) -> Result<SubscriptionOut, BillingError> {
    let sub = subscriptions::Entity::find_by_id(id)
        .one(&billing.core.db)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("subscription {id}")))?;
    Ok(load_out(&billing.core.db, sub).await?)
}

/// The subscription, if the actor may see it (its owner, or a service or admin).
pub async fn find_visible(
    billing: &Billing,
    actor: &Actor,
    id: &str,
) -> Result<subscriptions::Model, BillingError> {
    let not_found = || BillingError::NotFound(format!("subscription {id}"));
    let id = SubscriptionId::parse(id).ok_or_else(not_found)?;
    let sub = subscriptions::Entity::find_by_id(id.as_str())
        .one(&billing.core.db)
        .await?
        .ok_or_else(not_found)?;
    if sub.user_id != actor.user_id && !actor.is_trusted() {
        return Err(not_found());
    }
    Ok(sub)
}

pub async fn get_subscription(
    billing: &Billing,
    actor: &Actor,
    id: &str,
) -> Result<SubscriptionOut, BillingError> {
    let sub = find_visible(billing, actor, id).await?;
    Ok(load_out(&billing.core.db, sub).await?)
}

#[derive(Debug, Deserialize)]
pub struct ListSubscriptionsQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub status: Option<String>,
    /// Service/admin only: one user's subscriptions. Others always see their own.
    pub user_id: Option<String>,
}

pub async fn list_subscriptions(
    billing: &Billing,
    actor: &Actor,
    query: ListSubscriptionsQuery,
) -> Result<Page<SubscriptionOut>, BillingError> {
    let mut errors = Vec::new();
    validate::query_text(&mut errors, "user_id", query.user_id.as_deref());
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => {
            let parsed = SubscriptionStatus::parse(s);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "status",
                    shared::problem::one_of(shared::billing::SUBSCRIPTION_STATUSES),
                ));
            }
            parsed
        }
    };
    validate::finish(errors).map_err(BillingError::Invalid)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref(), ids::SUBSCRIPTION)
        .map_err(BillingError::Invalid)?;
    let mut select = subscriptions::Entity::find();
    select = match query.user_id.as_deref().filter(|_| actor.is_trusted()) {
        Some(user) => select.filter(subscriptions::Column::UserId.eq(user)),
        None if actor.is_trusted() => select,
        None => select.filter(subscriptions::Column::UserId.eq(actor.user_id.as_str())),
    };
    if let Some(status) = status {
        select = select.filter(subscriptions::Column::Status.eq(status));
    }
    let db = &billing.core.db;
    let rows = page.fetch(select, subscriptions::Column::Id, db).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(load_out(db, row).await?);
    }
    Ok(page.page(out, |s| &s.id, |s| s))
}

/// Ends a subscription now: `canceled`, its unpaid invoices voided, `subscription.canceled`.
/// Answers the invoices it voided (their orders are closed after the commit).
pub async fn end_now(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    sub: &mut subscriptions::Model,
    why: &str,
    at: DateTime<Utc>,
) -> Result<Vec<invoices::Model>, DbErr> {
    let mut voided = Vec::new();
    for invoice in store::unpaid_invoices(txn, &sub.id).await? {
        voided.push(invoicing::end_invoice(txn, outbox, invoice, InvoiceStatus::Void, at).await?);
    }
    sub.status = SubscriptionStatus::Canceled;
    sub.canceled_at.get_or_insert(at);
    sub.ended_at = Some(at);
    sub.cancel_at_period_end = false;
    sub.pending_plan_id = None;
    if sub.cancellation_reason.is_none() {
        sub.cancellation_reason = Some(why.to_owned());
    }
    sub.updated_at = at;
    store::save_subscription(txn, sub).await?;
    record_subscription(txn, outbox, SubscriptionChange::Canceled, sub, at).await?;
    Ok(voided)
}

pub mod changes;

pub use changes::{cancel_subscription, change_plan, pause_or_resume, set_payment_method};
