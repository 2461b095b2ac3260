//! Payments: one attempt to pay an order through a provider's checkout.
//!
//! Every status change goes through [`apply`]: a conditional update from `pending` plus its
//! events, in one transaction. Whoever wins that update (a verify, a cancel, the expiry sweep,
//! on any replica) writes the events; everyone else changes nothing. So a change is recorded
//! once, however often or concurrently it is observed.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QuerySelect,
};
use serde::Deserialize;
use shared::{FieldError, Problem, ids};

pub use shared::api::{CheckoutIn, PaymentOut};

use crate::AppState;
use crate::events::outbox::{self, EventType};
use crate::orders::service::{self as order_domain, OrderStatus};
use crate::platform::db::{after, begin_write, now};
use crate::platform::http::caller::Caller;
use crate::platform::http::error::{Error, Result};
use crate::platform::http::idempotency::Claim;
use crate::platform::pagination::{Page, PageRequest};
use crate::platform::validate;
use crate::providers::{
    CheckoutRequest, CloseReason, PaymentProvider, ProviderError, ProviderState, ProviderStatus,
};
use crate::{
    orders::entities::orders, payments::entities::payments, providers::entities::provider_events,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
    Canceled,
    Expired,
    PartiallyRefunded,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Canceled => "canceled",
            PaymentStatus::Expired => "expired",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub const ALL: [PaymentStatus; 7] = [
        Self::Pending,
        Self::Succeeded,
        Self::Failed,
        Self::Canceled,
        Self::Expired,
        Self::PartiallyRefunded,
        Self::Refunded,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether a payment in status `s` has money that can still be refunded.
    pub fn is_refundable(s: &str) -> bool {
        matches!(
            Self::parse(s),
            Some(Self::Succeeded | Self::PartiallyRefunded)
        )
    }
}

impl From<payments::Model> for PaymentOut {
    fn from(p: payments::Model) -> Self {
        PaymentOut {
            id: p.id,
            order_id: p.order_id,
            user_id: p.user_id,
            provider: p.provider,
            provider_reference: p.provider_reference,
            status: p.status,
            amount: p.amount,
            amount_refunded: p.amount_refunded,
            currency: p.currency,
            checkout_url: p.checkout_url,
            success_url: p.success_url,
            cancel_url: p.cancel_url,
            failure_reason: p.failure_reason,
            next_action: p
                .next_action
                .and_then(|action| serde_json::from_value(action).ok()),
            metadata: p.metadata,
            created_at: p.created_at,
            updated_at: p.updated_at,
            expires_at: p.expires_at,
        }
    }
}

pub(crate) fn provider_unavailable(err: ProviderError) -> Error {
    match err {
        ProviderError::Db(e) => Error::Db(e),
        ProviderError::Rejected { code, message } => {
            tracing::info!(%code, %message, "payment provider refused a request");
            Problem::unprocessable(
                "provider_rejected",
                format!("The payment provider refused: {message} ({code})"),
            )
            .into()
        }
        ProviderError::Unsupported(what) => {
            Problem::unprocessable("provider_unsupported", what).into()
        }
        ProviderError::Unavailable(reason) => {
            tracing::warn!(%reason, "payment provider unavailable");
            unavailable_problem("The payment provider did not answer as expected; retry later")
                .into()
        }
    }
}

/// The 502 a caller gets when the payment provider did not answer.
pub(crate) fn unavailable_problem(detail: impl Into<String>) -> Problem {
    Problem::new(
        axum::http::StatusCode::BAD_GATEWAY,
        "provider_unavailable",
        "Payment provider unavailable",
        detail,
    )
}

pub(crate) fn provider_of(
    state: &AppState,
    name: &str,
) -> Result<std::sync::Arc<dyn PaymentProvider>> {
    state.providers.get(name).ok_or_else(|| {
        Error::Internal(anyhow::anyhow!(
            "payment uses provider {name}, which is not configured"
        ))
    })
}

/// Starts paying an order: closes the order's earlier open checkouts (one order, one payable
/// checkout at a time, so a buyer cannot pay twice), then opens a new one at the provider.
#[tracing::instrument(skip_all, fields(order_id))]
pub async fn checkout(
    state: &AppState,
    caller: &Caller,
    order_id: &str,
    input: CheckoutIn,
    claim: Option<Claim>,
) -> Result<PaymentOut> {
    let mut errors = Vec::new();
    validate::url(&mut errors, "success_url", &input.success_url);
    validate::url(&mut errors, "cancel_url", &input.cancel_url);
    validate::metadata(&mut errors, &input.metadata);
    if let Some(method) = &input.payment_method
        && (method.is_empty()
            || method.len() > 255
            || !method.bytes().all(|b| b.is_ascii_graphic()))
    {
        errors.push(FieldError::new(
            "payment_method",
            "must be a provider's payment method id, such as pm_…",
        ));
    }
    let provider_name = input
        .provider
        .clone()
        .unwrap_or_else(|| state.providers.default_name().to_owned());
    let provider = state.providers.get(&provider_name);
    if provider.is_none() {
        errors.push(FieldError::new(
            "provider",
            format!("must be one of: {}", state.providers.names().join(", ")),
        ));
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors).into());
    }
    let provider = provider.ok_or_else(|| Error::Internal(anyhow::anyhow!("checked above")))?;

    let order = order_domain::find_visible(&state.db, caller, order_id).await?;
    if order.user_id != caller.user_id {
        return Err(Problem::forbidden("Only the order's owner can check it out").into());
    }
    ensure_payable(&order, now())?;

    // Close earlier checkouts first. If one of them was paid meanwhile, the order is paid.
    let open = pending_of_order(&state.db, &order.id).await?;
    for earlier in &open {
        let closed = close_payment(state, earlier, CloseReason::Canceled)
            .await?
            .payment;
        if closed.status == PaymentStatus::Succeeded.as_str() {
            return Err(Problem::conflict(
                "order_not_payable",
                format!("The order was just paid by payment {}", closed.id),
            )
            .into());
        }
    }

    let items = order_domain::load_items(&state.db, &order.id).await?;
    let at = now();
    let payment_id = ids::new_id(ids::PAYMENT);
    let expires_at = after(at, state.config.payment_ttl).min(order.expires_at);
    let started = provider
        .start_checkout(&CheckoutRequest {
            payment_id: &payment_id,
            order_id: &order.id,
            amount: order.total_amount,
            currency: &order.currency,
            items: &items,
            success_url: &input.success_url,
            cancel_url: &input.cancel_url,
            expires_at,
            payment_method: input.payment_method.as_deref(),
        })
        .await
        .map_err(provider_unavailable)?;

    let payment = payments::Model {
        id: payment_id,
        order_id: order.id.clone(),
        user_id: order.user_id.clone(),
        provider: provider.name().to_owned(),
        provider_reference: started.reference,
        checkout_url: started.checkout_url,
        status: PaymentStatus::Pending.as_str().to_owned(),
        amount: order.total_amount,
        amount_refunded: 0,
        currency: order.currency.clone(),
        success_url: input.success_url,
        cancel_url: input.cancel_url,
        metadata: input.metadata.unwrap_or_else(|| serde_json::json!({})),
        failure_reason: None,
        created_at: at,
        updated_at: at,
        expires_at,
        provider_payment_reference: None,
        next_action: None,
    };
    let txn = begin_write(&state.db).await?;
    // Re-read under the transaction's lock: the order may have changed since we looked.
    let locked = orders::Entity::find_by_id(&order.id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| Problem::not_found(format!("order {}", order.id)))?;
    if let Err(problem) = ensure_payable(&locked, at) {
        drop(txn);
        if let Err(e) = provider.close(&payment, CloseReason::Canceled).await {
            tracing::warn!(error = %e, payment_id = %payment.id, "could not close an unused checkout");
        }
        return Err(problem.into());
    }
    payments::ActiveModel::from(payment.clone())
        .insert(&txn)
        .await?;
    outbox::record(
        &txn,
        EventType::PaymentCreated,
        &payment.id,
        &PaymentOut::from(payment.clone()),
        at,
    )
    .await?;
    // A server-side charge may be settled already; record it with the creation.
    let out = if changes_nothing(&payment, &started.state) {
        PaymentOut::from(payment)
    } else {
        PaymentOut::from(apply_in(&txn, &payment, &started.state, at).await?.payment)
    };
    if let Some(claim) = claim {
        claim
            .complete(&txn, axum::http::StatusCode::CREATED, &out)
            .await?;
    }
    state.commit(txn).await?;
    Ok(out)
}

/// The pending payments of an order. Selected by the order alone and filtered here: with a
/// `status = $2` condition too, PostgreSQL's generic plan for the prepared statement (made while
/// the table was small) used the `(status, expires_at)` index and read every pending payment of
/// every order, so each checkout grew slower with the number of open checkouts. An order has
/// only the few payments of its own checkouts.
pub async fn pending_of_order(
    db: &DatabaseConnection,
    order_id: &str,
) -> Result<Vec<payments::Model>> {
    Ok(payments::Entity::find()
        .filter(payments::Column::OrderId.eq(order_id))
        .all(db)
        .await?
        .into_iter()
        .filter(|p| p.status == PaymentStatus::Pending.as_str())
        .collect())
}

fn ensure_payable(order: &orders::Model, at: DateTime<Utc>) -> Result<(), Problem> {
    if order.status != OrderStatus::Pending.as_str() {
        return Err(Problem::conflict(
            "order_not_payable",
            format!(
                "The order is {}; only a pending order can be paid",
                order.status
            ),
        ));
    }
    if order.expires_at <= at {
        return Err(Problem::conflict(
            "order_not_payable",
            "The order has expired; ask for a new one",
        ));
    }
    Ok(())
}

/// The payment if this caller may see it: its owner or an admin.
pub async fn find_visible(
    db: &DatabaseConnection,
    caller: &Caller,
    payment_id: &str,
) -> Result<payments::Model> {
    let not_found = || Problem::not_found(format!("payment {payment_id}"));
    if !ids::is_valid(ids::PAYMENT, payment_id) {
        return Err(not_found().into());
    }
    let payment = payments::Entity::find_by_id(payment_id)
        .one(db)
        .await?
        .ok_or_else(not_found)?;
    if payment.user_id != caller.user_id && !caller.is_admin() {
        return Err(not_found().into());
    }
    Ok(payment)
}

pub async fn get_payment(db: &DatabaseConnection, caller: &Caller, id: &str) -> Result<PaymentOut> {
    Ok(find_visible(db, caller, id).await?.into())
}

#[derive(Debug, Deserialize)]
pub struct ListPaymentsQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub order_id: Option<String>,
    pub status: Option<String>,
    /// Admin only: the payments of one user. Others always see their own.
    pub user_id: Option<String>,
}

pub async fn list_payments(
    db: &DatabaseConnection,
    caller: &Caller,
    query: ListPaymentsQuery,
) -> Result<Page<PaymentOut>> {
    let mut errors = Vec::new();
    validate::query_text(&mut errors, "user_id", query.user_id.as_deref());
    validate::query_id(
        &mut errors,
        "order_id",
        ids::ORDER,
        query.order_id.as_deref(),
    );
    validate::finish(errors)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref(), ids::PAYMENT)?;
    let mut select = payments::Entity::find();
    if caller.is_admin() {
        if let Some(user_id) = &query.user_id {
            select = select.filter(payments::Column::UserId.eq(user_id));
        }
    } else {
        select = select.filter(payments::Column::UserId.eq(&caller.user_id));
    }
    if let Some(order_id) = &query.order_id {
        select = select.filter(payments::Column::OrderId.eq(order_id));
    }
    if let Some(status) = &query.status {
        let status = PaymentStatus::parse(status).ok_or_else(|| {
            Problem::validation(vec![FieldError::new(
                "status",
                shared::problem::one_of(PaymentStatus::ALL.map(PaymentStatus::as_str)),
            )])
        })?;
        select = select.filter(payments::Column::Status.eq(status.as_str()));
    }
    let rows = page.fetch(select, payments::Column::Id, db).await?;
    Ok(page.page(rows, |p| &p.id, PaymentOut::from))
}

/// Asks the provider and records what changed. Verifying a settled payment changes nothing.
pub async fn verify_payment(state: &AppState, caller: &Caller, id: &str) -> Result<PaymentOut> {
    let payment = find_visible(&state.db, caller, id).await?;
    Ok(refresh(state, &payment, now()).await?.payment.into())
}

pub async fn cancel_payment(state: &AppState, caller: &Caller, id: &str) -> Result<PaymentOut> {
    let payment = find_visible(&state.db, caller, id).await?;
    if payment.status != PaymentStatus::Pending.as_str() {
        return Err(Problem::conflict(
            "payment_not_cancelable",
            format!(
                "The payment is {}; only a pending payment can be canceled",
                payment.status
            ),
        )
        .into());
    }
    let current = close_payment(state, &payment, CloseReason::Canceled)
        .await?
        .payment;
    if current.status != PaymentStatus::Canceled.as_str() {
        return Err(Problem::conflict(
            "payment_not_cancelable",
            format!(
                "The payment became {} before it could be canceled",
                current.status
            ),
        )
        .into());
    }
    Ok(current.into())
}

/// Brings a pending payment up to date with its provider; if it is still open at `at`, past
/// its expiry time, closes it.
pub async fn refresh(
    state: &AppState,
    payment: &payments::Model,
    at: DateTime<Utc>,
) -> Result<Applied> {
    if payment.status != PaymentStatus::Pending.as_str() {
        return Ok(Applied::unmoved(payment.clone()));
    }
    let provider = provider_of(state, &payment.provider)?;
    let mut status = provider
        .fetch_status(payment)
        .await
        .map_err(provider_unavailable)?;
    if status.status == ProviderStatus::Pending && at >= payment.expires_at {
        status = provider
            .close(payment, CloseReason::Expired)
            .await
            .map_err(provider_unavailable)?;
    }
    apply(state, payment, status).await
}

/// Closes a pending payment's checkout at the provider, then records the outcome (which is a
/// success if the buyer paid just before).
pub async fn close_payment(
    state: &AppState,
    payment: &payments::Model,
    reason: CloseReason,
) -> Result<Applied> {
    let provider = provider_of(state, &payment.provider)?;
    let status = provider
        .close(payment, reason)
        .await
        .map_err(provider_unavailable)?;
    apply(state, payment, status).await
}

/// Records a provider state on a pending payment, with its events, once. Answers the payment
/// as it now is.
pub async fn apply(
    state: &AppState,
    payment: &payments::Model,
    provider_state: ProviderState,
) -> Result<Applied> {
    if changes_nothing(payment, &provider_state) {
        return Ok(Applied::unmoved(payment.clone()));
    }
    let at = now();
    let txn = begin_write(&state.db).await?;
    let applied = apply_in(&txn, payment, &provider_state, at).await?;
    state.commit(txn).await?;
    Ok(applied)
}

/// Whether recording this state would leave the payment as it is: still pending, with the same
/// charge reference and the same action for the buyer.
fn changes_nothing(payment: &payments::Model, provider_state: &ProviderState) -> bool {
    let same_action = match (&provider_state.next_action, &payment.next_action) {
        (None, None) => true,
        (Some(new), Some(old)) => serde_json::to_value(new).is_ok_and(|new| &new == old),
        _ => false,
    };
    provider_state.status == ProviderStatus::Pending
        && same_action
        && (provider_state.payment_reference.is_none()
            || provider_state.payment_reference == payment.provider_payment_reference)
}

/// [`apply`] inside the caller's transaction.
async fn apply_in(
    txn: &DatabaseTransaction,
    payment: &payments::Model,
    provider_state: &ProviderState,
    at: DateTime<Utc>,
) -> Result<Applied> {
    let change = match &provider_state.status {
        ProviderStatus::Pending => None,
        ProviderStatus::Succeeded => {
            Some((PaymentStatus::Succeeded, None, EventType::PaymentSucceeded))
        }
        ProviderStatus::Failed { reason } => Some((
            PaymentStatus::Failed,
            Some(reason.clone()),
            EventType::PaymentFailed,
        )),
        ProviderStatus::Canceled => {
            Some((PaymentStatus::Canceled, None, EventType::PaymentCanceled))
        }
        ProviderStatus::Expired => Some((PaymentStatus::Expired, None, EventType::PaymentExpired)),
    };
    let mut update = payments::Entity::update_many()
        .col_expr(payments::Column::UpdatedAt, at.into())
        .filter(payments::Column::Id.eq(&payment.id))
        .filter(payments::Column::Status.eq(PaymentStatus::Pending.as_str()));
    if let Some(reference) = &provider_state.payment_reference {
        update = update.col_expr(
            payments::Column::ProviderPaymentReference,
            reference.clone().into(),
        );
    }
    let next_action = match (&change, &provider_state.next_action) {
        (None, Some(action)) => {
            Some(serde_json::to_value(action).map_err(|e| Error::Internal(e.into()))?)
        }
        _ => None,
    };
    update = update.col_expr(payments::Column::NextAction, next_action.into());
    if let Some((to, failure_reason, _)) = &change {
        update = update
            .col_expr(payments::Column::Status, to.as_str().into())
            .col_expr(
                payments::Column::FailureReason,
                failure_reason.clone().into(),
            );
    }
    let res = update.exec(txn).await?;
    let current = payments::Entity::find_by_id(&payment.id)
        .one(txn)
        .await?
        .ok_or_else(|| Problem::not_found(format!("payment {}", payment.id)))?;
    let Some((to, _, event)) = change else {
        // Still pending: only what the buyer must do, or the charge, changed.
        return Ok(Applied::unmoved(current));
    };
    if res.rows_affected == 0 {
        // Someone else recorded a change first; theirs stands, with its events.
        return Ok(Applied::unmoved(current));
    }
    outbox::record(
        txn,
        event,
        &current.id,
        &PaymentOut::from(current.clone()),
        at,
    )
    .await?;
    if to == PaymentStatus::Succeeded {
        let (_, paid) = order_domain::move_order(
            txn,
            &current.order_id,
            OrderStatus::Pending,
            OrderStatus::Paid,
            EventType::OrderPaid,
            at,
        )
        .await?;
        if !paid {
            // Money arrived for an order that is no longer pending (paid by another payment,
            // or canceled a moment before). Keep the record true and make it visible.
            tracing::warn!(payment_id = %current.id, order_id = %current.order_id,
                "payment succeeded on an order that is not pending; it needs a refund");
        }
    }
    Ok(Applied {
        payment: current,
        moved: true,
    })
}

/// A payment after a provider state was applied to it.
pub struct Applied {
    /// The payment as it now is.
    pub payment: payments::Model,
    /// Whether this call moved it out of `pending` (and recorded the events); false when there
    /// was nothing to record, or someone else recorded it first.
    pub moved: bool,
}

impl Applied {
    fn unmoved(payment: payments::Model) -> Applied {
        Applied {
            payment,
            moved: false,
        }
    }
}

/// What one expiry sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    pub payments: usize,
    pub orders: usize,
    pub idempotency_keys: u64,
}

/// Expires pending payments and orders past their time (after asking the provider, so a payment
/// made at the last moment is recorded as paid), and forgets old idempotency keys. Safe to run
/// on every replica at once.
pub async fn expire_due(state: &AppState, at: DateTime<Utc>, batch: u64) -> Result<Sweep> {
    let mut sweep = Sweep::default();
    let due = payments::Entity::find()
        .filter(payments::Column::Status.eq(PaymentStatus::Pending.as_str()))
        .filter(payments::Column::ExpiresAt.lte(at))
        .limit(batch)
        .all(&state.db)
        .await?;
    for payment in &due {
        // Counted when this replica expired it (not when another one did, meanwhile).
        match refresh(state, payment, at).await {
            Ok(applied)
                if applied.moved && applied.payment.status == PaymentStatus::Expired.as_str() =>
            {
                sweep.payments += 1
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, payment_id = %payment.id, "could not expire payment")
            }
        }
    }
    let due = orders::Entity::find()
        .filter(orders::Column::Status.eq(OrderStatus::Pending.as_str()))
        .filter(orders::Column::ExpiresAt.lte(at))
        .limit(batch)
        .all(&state.db)
        .await?;
    for order in &due {
        match order_domain::close_order(state, order, OrderStatus::Expired).await {
            Ok((_, true)) => sweep.orders += 1,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, order_id = %order.id, "could not expire order"),
        }
    }
    sweep.idempotency_keys =
        crate::platform::http::idempotency::purge_expired(&state.db, at).await?;
    // Providers stop retrying an event after days (Stripe: 3); its id need not be kept longer.
    provider_events::Entity::delete_many()
        .filter(provider_events::Column::ReceivedAt.lt(at - chrono::Duration::days(30)))
        .exec(&state.db)
        .await?;
    Ok(sweep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statuses_are_the_documented_ones() {
        assert_eq!(
            PaymentStatus::ALL.map(PaymentStatus::as_str),
            shared::api::PAYMENT_STATUSES
        );
    }
}
