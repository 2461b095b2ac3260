//! Refunds: giving back part or all of a succeeded payment.
//!
//! A refund is first *reserved*: in one transaction holding the payment's row lock, what
//! remains (the amount less every pending or succeeded refund) is checked and a `pending`
//! refund row is written. Only then is the provider asked, outside any transaction, with our
//! refund id as its idempotency key. Its answer *settles* the row (succeeded or failed) in a
//! second transaction that also moves the payment's `amount_refunded` and status and records
//! the events. So concurrent refunds can never promise more than was paid, and a refund whose
//! answer was lost (a timeout, a crash) stays pending, holding its amount, until a retry with
//! the same Idempotency-Key or the sweep learns its outcome from the provider.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use shared::api::{PaymentOut, RefundIn, RefundOut};
use shared::{FieldError, Problem, ids};

use crate::AppState;
use crate::events::outbox::{self, EventType};
use crate::orders::service::{self as order_domain, OrderStatus};
use crate::payments::service::{
    PaymentStatus, find_visible, provider_of, provider_unavailable, unavailable_problem,
};
use crate::platform::db::{begin_write, now};
use crate::platform::http::caller::Caller;
use crate::platform::http::error::Result;
use crate::platform::http::idempotency::Claim;
use crate::platform::pagination::{Page, PageRequest};
use crate::providers::{ProviderError, ProviderRefund, RefundRequest, RefundStatus};
use crate::{payments::entities::payments, refunds::entities::refunds};

pub const MAX_REASON_LEN: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundState {
    Pending,
    Succeeded,
    Failed,
}

impl RefundState {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundState::Pending => "pending",
            RefundState::Succeeded => "succeeded",
            RefundState::Failed => "failed",
        }
    }
}

impl From<refunds::Model> for RefundOut {
    fn from(r: refunds::Model) -> Self {
        RefundOut {
            id: r.id,
            payment_id: r.payment_id,
            order_id: r.order_id,
            provider: r.provider,
            provider_reference: r.provider_reference,
            amount: r.amount,
            currency: r.currency,
            status: r.status,
            reason: r.reason,
            failure_reason: r.failure_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The data of `payment.refunded`: the payment as it now is, and the refund that moved it.
#[derive(Serialize)]
struct PaymentRefunded<'a> {
    #[serde(flatten)]
    payment: PaymentOut,
    refund: &'a RefundOut,
}

fn check(input: &RefundIn) -> Result<(), Problem> {
    let mut errors = Vec::new();
    if let Some(amount) = input.amount
        && !(1..=shared::money::MAX_AMOUNT).contains(&amount)
    {
        errors.push(FieldError::new(
            "amount",
            format!(
                "must be between 1 and {} (minor units)",
                shared::money::MAX_AMOUNT
            ),
        ));
    }
    if let Some(reason) = &input.reason {
        crate::platform::validate::text(&mut errors, "reason", reason, MAX_REASON_LEN);
    }
    crate::platform::validate::finish(errors)
}

/// `POST /payments/{id}/refunds` (admin).
pub async fn create_refund(
    state: &AppState,
    caller: &Caller,
    payment_id: &str,
    input: RefundIn,
    key: Option<String>,
    claim: Option<Claim>,
) -> Result<RefundOut> {
    if !caller.is_admin() {
        return Err(Problem::forbidden("Refunds need the admin role").into());
    }
    check(&input)?;
    let payment = find_visible(&state.db, caller, payment_id).await?;
    let refund = reserve(state, &payment, &input, key, caller).await?;
    if refund.status != RefundState::Pending.as_str() {
        return Ok(refund.into()); // settled by an earlier request with this key
    }
    match send(state, &payment, &refund, claim).await? {
        Ok(settled) => Ok(settled.into()),
        Err(ProviderError::Rejected { code, message }) => Err(Problem::unprocessable(
            "refund_refused",
            format!(
                "The payment provider refused refund {}: {message} ({code})",
                refund.id
            ),
        )
        .into()),
        Err(ProviderError::Unavailable(reason)) => {
            tracing::warn!(refund_id = %refund.id, %reason, "refund outcome unknown; it stays pending");
            Err(unavailable_problem(format!(
                "Refund {} is pending: the provider did not answer. Retry with the same \
                 Idempotency-Key, or let the background sweep settle it",
                refund.id
            ))
            .into())
        }
        Err(other) => Err(provider_unavailable(other)),
    }
}

/// Asks the provider for a reserved refund (idempotent per refund id) and settles what it
/// answers; a refusal settles the refund as failed, releasing its amount. The inner error is
/// the provider's, for the caller to word.
async fn send(
    state: &AppState,
    payment: &payments::Model,
    refund: &refunds::Model,
    claim: Option<Claim>,
) -> Result<Result<refunds::Model, ProviderError>> {
    let provider = provider_of(state, &payment.provider)?;
    let answer = provider
        .refund(&RefundRequest {
            refund_id: &refund.id,
            payment,
            amount: refund.amount,
            reason: refund.reason.as_deref(),
        })
        .await;
    let found = match answer {
        Ok(found) => found,
        Err(ProviderError::Rejected { code, message }) => {
            let failed = ProviderRefund {
                reference: String::new(),
                amount: refund.amount,
                status: RefundStatus::Failed {
                    reason: format!("{code}: {message}"),
                },
                refund_id: Some(refund.id.clone()),
            };
            settle(state, refund, &failed, None).await?;
            return Ok(Err(ProviderError::Rejected { code, message }));
        }
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(settle(state, refund, &found, claim).await?))
}

/// Finds the refund this Idempotency-Key already started, or reserves a new one.
async fn reserve(
    state: &AppState,
    payment: &payments::Model,
    input: &RefundIn,
    key: Option<String>,
    caller: &Caller,
) -> Result<refunds::Model> {
    let txn = begin_write(&state.db).await?;
    if let Some(key) = &key
        && let Some(existing) = refunds::Entity::find()
            .filter(refunds::Column::PaymentId.eq(&payment.id))
            .filter(refunds::Column::IdempotencyKey.eq(key))
            .one(&txn)
            .await?
    {
        return Ok(existing);
    }
    // The payment's row lock serializes reservations of one payment (SQLite's write lock
    // already does): what we read below cannot change until we commit.
    let locked = payments::Entity::find_by_id(&payment.id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| Problem::not_found(format!("payment {}", payment.id)))?;
    if !PaymentStatus::is_refundable(&locked.status) {
        return Err(Problem::conflict(
            "payment_not_refundable",
            format!(
                "The payment is {}; only a succeeded payment can be refunded",
                locked.status
            ),
        )
        .into());
    }
    let held: i64 = refunds::Entity::find()
        .filter(refunds::Column::PaymentId.eq(&payment.id))
        .filter(refunds::Column::Status.is_in([
            RefundState::Pending.as_str(),
            RefundState::Succeeded.as_str(),
        ]))
        .all(&txn)
        .await?
        .iter()
        .map(|r| r.amount)
        .sum();
    let remaining = locked.amount.saturating_sub(held);
    if remaining <= 0 {
        return Err(Problem::conflict(
            "payment_fully_refunded",
            "Nothing remains to refund: the payment is refunded in full, or pending refunds \
             hold the rest",
        )
        .into());
    }
    let amount = input.amount.unwrap_or(remaining);
    if amount > remaining {
        return Err(Problem::unprocessable(
            "refund_exceeds_remaining",
            format!("At most {remaining} can still be refunded; {amount} was asked"),
        )
        .into());
    }
    let at = now();
    let refund = refunds::ActiveModel {
        id: Set(ids::new_id(ids::REFUND)),
        payment_id: Set(locked.id.clone()),
        order_id: Set(locked.order_id.clone()),
        provider: Set(locked.provider.clone()),
        provider_reference: Set(None),
        amount: Set(amount),
        currency: Set(locked.currency.clone()),
        status: Set(RefundState::Pending.as_str().to_owned()),
        reason: Set(input.reason.clone()),
        failure_reason: Set(None),
        idempotency_key: Set(key),
        requested_by: Set(Some(caller.user_id.clone())),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(refund)
}

/// Records what the provider said of a pending refund. A success moves the payment (and, when
/// refunded in full, its order) with their events, once: a refund already settled is left
/// as it is.
async fn settle(
    state: &AppState,
    refund: &refunds::Model,
    found: &ProviderRefund,
    claim: Option<Claim>,
) -> Result<refunds::Model> {
    let at = now();
    let txn = begin_write(&state.db).await?;
    let reference = Some(found.reference.clone()).filter(|r| !r.is_empty());
    let mut update = refunds::Entity::update_many()
        .col_expr(refunds::Column::UpdatedAt, at.into())
        .filter(refunds::Column::Id.eq(&refund.id))
        .filter(refunds::Column::Status.eq(RefundState::Pending.as_str()));
    if let Some(reference) = &reference {
        update = update.col_expr(refunds::Column::ProviderReference, reference.clone().into());
    }
    let to = match &found.status {
        RefundStatus::Pending => None,
        RefundStatus::Succeeded => Some(RefundState::Succeeded),
        RefundStatus::Failed { reason } => {
            update = update.col_expr(refunds::Column::FailureReason, reason.clone().into());
            Some(RefundState::Failed)
        }
    };
    if let Some(to) = to {
        update = update.col_expr(refunds::Column::Status, to.as_str().into());
    }
    let moved = update.exec(&txn).await?.rows_affected == 1;
    let current = refunds::Entity::find_by_id(&refund.id)
        .one(&txn)
        .await?
        .ok_or_else(|| Problem::not_found(format!("refund {}", refund.id)))?;
    if moved && to == Some(RefundState::Succeeded) {
        record_success(&txn, &current, at).await?;
    }
    let out = RefundOut::from(current.clone());
    if let Some(claim) = claim {
        claim
            .complete(&txn, axum::http::StatusCode::CREATED, &out)
            .await?;
    }
    state.commit(txn).await?;
    Ok(current)
}

async fn record_success(
    txn: &sea_orm::DatabaseTransaction,
    refund: &refunds::Model,
    at: DateTime<Utc>,
) -> Result<()> {
    let payment = payments::Entity::find_by_id(&refund.payment_id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| Problem::not_found(format!("payment {}", refund.payment_id)))?;
    let refunded = payment.amount_refunded.saturating_add(refund.amount);
    if refunded > payment.amount {
        // Only a refund made at the provider, outside this API, can do this; keep the truth.
        tracing::error!(payment_id = %payment.id, refunded, amount = payment.amount,
            "more was refunded than was paid");
    }
    let status = if refunded >= payment.amount {
        PaymentStatus::Refunded
    } else {
        PaymentStatus::PartiallyRefunded
    };
    // A payment refunded after it succeeded on an order that was not pending any more (see
    // `payments::apply_in`) keeps its order's status.
    let mut current = payment.clone();
    current.amount_refunded = refunded;
    current.updated_at = at;
    if PaymentStatus::is_refundable(&payment.status) {
        current.status = status.as_str().to_owned();
    }
    payments::Entity::update_many()
        .col_expr(payments::Column::AmountRefunded, refunded.into())
        .col_expr(payments::Column::Status, current.status.clone().into())
        .col_expr(payments::Column::UpdatedAt, at.into())
        .filter(payments::Column::Id.eq(&payment.id))
        .exec(txn)
        .await?;
    let refund_out = RefundOut::from(refund.clone());
    outbox::record(
        txn,
        EventType::PaymentRefunded,
        &payment.id,
        &PaymentRefunded {
            payment: PaymentOut::from(current.clone()),
            refund: &refund_out,
        },
        at,
    )
    .await?;
    if current.status == PaymentStatus::Refunded.as_str() {
        order_domain::move_order(
            txn,
            &payment.order_id,
            OrderStatus::Paid,
            OrderStatus::Refunded,
            EventType::OrderRefunded,
            at,
        )
        .await?;
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct ListRefundsQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// `GET /payments/{id}/refunds`: the payment's owner or an admin.
pub async fn list_refunds(
    db: &DatabaseConnection,
    caller: &Caller,
    payment_id: &str,
    query: ListRefundsQuery,
) -> Result<Page<RefundOut>> {
    let page = PageRequest::parse(query.limit, query.cursor.as_deref(), ids::REFUND)?;
    let payment = find_visible(db, caller, payment_id).await?;
    let select = refunds::Entity::find().filter(refunds::Column::PaymentId.eq(&payment.id));
    let rows = page.fetch(select, refunds::Column::Id, db).await?;
    Ok(page.page(rows, |r| &r.id, RefundOut::from))
}

/// Brings a payment's refunds in line with the provider's: settles our pending ones from what
/// the provider holds, records refunds made elsewhere (e.g. in the provider's dashboard), and
/// sends again (same refund id, so at most once) pending ones the provider never received.
/// `resend_before`: only pending refunds last touched before it are sent again, so a request
/// still waiting for its answer is left alone.
pub async fn sync(
    state: &AppState,
    payment: &payments::Model,
    resend_before: DateTime<Utc>,
) -> Result<()> {
    let provider = provider_of(state, &payment.provider)?;
    let held = provider
        .list_refunds(payment)
        .await
        .map_err(provider_unavailable)?;
    let ours = refunds::Entity::find()
        .filter(refunds::Column::PaymentId.eq(&payment.id))
        .all(&state.db)
        .await?;
    for found in &held {
        let mine = ours.iter().find(|r| {
            found.refund_id.as_deref() == Some(r.id.as_str())
                || r.provider_reference.as_deref() == Some(found.reference.as_str())
        });
        match mine {
            Some(refund) if refund.status == RefundState::Pending.as_str() => {
                settle(state, refund, found, None).await?;
            }
            Some(_) => {}
            None if found.status == RefundStatus::Succeeded => {
                if let Some(refund) = record_external(state, payment, found).await? {
                    settle(state, &refund, found, None).await?;
                }
            }
            None => {}
        }
    }
    for refund in &ours {
        let at_provider = held.iter().any(|f| {
            f.refund_id.as_deref() == Some(refund.id.as_str())
                || refund.provider_reference.as_deref() == Some(f.reference.as_str())
        });
        if refund.status == RefundState::Pending.as_str()
            && !at_provider
            && refund.updated_at < resend_before
        {
            match send(state, payment, refund, None).await? {
                Ok(_) | Err(ProviderError::Rejected { .. }) => {}
                Err(e) => return Err(provider_unavailable(e)),
            }
        }
    }
    Ok(())
}

/// A pending row for a refund made outside this API; `None` when another replica recorded it
/// first.
async fn record_external(
    state: &AppState,
    payment: &payments::Model,
    found: &ProviderRefund,
) -> Result<Option<refunds::Model>> {
    let at = now();
    let id = ids::new_id(ids::REFUND);
    let inserted = refunds::Entity::insert(refunds::ActiveModel {
        id: Set(id.clone()),
        payment_id: Set(payment.id.clone()),
        order_id: Set(payment.order_id.clone()),
        provider: Set(payment.provider.clone()),
        provider_reference: Set(Some(found.reference.clone())),
        amount: Set(found.amount),
        currency: Set(payment.currency.clone()),
        status: Set(RefundState::Pending.as_str().to_owned()),
        reason: Set(Some("refunded at the provider".to_owned())),
        failure_reason: Set(None),
        idempotency_key: Set(None),
        requested_by: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
    })
    .on_conflict(
        OnConflict::columns([
            refunds::Column::Provider,
            refunds::Column::ProviderReference,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(&state.db)
    .await?;
    if inserted == 0 {
        return Ok(None);
    }
    tracing::info!(payment_id = %payment.id, reference = %found.reference, amount = found.amount,
        "recorded a refund made at the provider");
    Ok(refunds::Entity::find_by_id(&id).one(&state.db).await?)
}

/// Settles pending refunds whose answer was lost, oldest first; run by the periodic sweep.
pub async fn settle_pending(state: &AppState, at: DateTime<Utc>, batch: u64) -> Result<usize> {
    // A request may still be waiting for its provider: leave its refund alone until it times out.
    let grace = state.config.request_timeout * 2;
    let before = at - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::zero());
    let pending = refunds::Entity::find()
        .filter(refunds::Column::Status.eq(RefundState::Pending.as_str()))
        .filter(refunds::Column::UpdatedAt.lte(before))
        .order_by_asc(refunds::Column::UpdatedAt)
        .limit(batch)
        .all(&state.db)
        .await?;
    let mut settled = 0;
    let mut seen = Vec::new();
    for refund in pending {
        if seen.contains(&refund.payment_id) {
            continue;
        }
        seen.push(refund.payment_id.clone());
        let Some(payment) = payments::Entity::find_by_id(&refund.payment_id)
            .one(&state.db)
            .await?
        else {
            continue;
        };
        match sync(state, &payment, before).await {
            Ok(()) => settled += 1,
            Err(e) => {
                tracing::warn!(error = %e, refund_id = %refund.id, "could not settle a pending refund")
            }
        }
    }
    Ok(settled)
}
