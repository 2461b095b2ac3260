//! Refund use cases: refund a payment, list its refunds.
//!
//! A refund is first *reserved*: in one transaction holding the payment's row lock, what
//! remains (the amount less every pending or succeeded refund) is checked and a `pending`
//! refund row is written. Only then is the provider asked, outside any transaction, with our
//! refund id as its idempotency key. Its answer *settles* the row (succeeded or failed) in a
//! second transaction that also moves the payment's `amount_refunded` and status and records
//! the events. So concurrent refunds can never promise more than was paid, and a refund whose
//! answer was lost (a timeout, a crash) stays pending, holding its amount, until a retry with
//! the same Idempotency-Key or the sweep learns its outcome from the provider.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, Set};
use serde::Deserialize;
use shared::api::{PaymentOut, RefundIn, RefundOut};
use shared::ids;

use super::entities::refunds;
use super::model::{RefundError, RefundState, check};
use super::store;
use crate::events::Event;
use crate::payments::entities::payments;
use crate::payments::model::{PaymentId, PaymentStatus};
use crate::payments::revenue::{self, Move};
use crate::payments::service::Payments;
use crate::payments::store as payment_store;
use crate::platform::pagination::{Page, PageRequest};
use crate::platform::{Actor, BeforeCommit, Nothing};
use crate::providers::{ProviderError, ProviderRefund, RefundRequest, RefundStatus};

/// The refunds context: payments' own, and how long a request may still be waiting for its
/// provider (its pending refund is left alone that long).
#[derive(Clone)]
pub struct Refunds {
    pub payments: Payments,
    pub request_timeout: Duration,
}

/// A refund to make: on which payment, how much (all that remains when `None`), why, and the
/// Idempotency-Key that makes a retry find the same refund.
pub struct RefundPayment {
    pub payment_id: PaymentId,
    pub input: RefundIn,
    pub key: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ListRefundsQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

impl Refunds {
    /// A refund this service makes itself (`who`: the part of it that asks, as the refund's
    /// actor), with the key that makes a retry find the same refund.
    pub async fn refund_as_system(
        &self,
        who: &str,
        payment_id: PaymentId,
        input: RefundIn,
        key: String,
    ) -> Result<RefundOut, RefundError> {
        let actor = Actor {
            user_id: who.to_owned(),
            roles: vec![shared::internal::Role::Admin],
        };
        let command = RefundPayment {
            payment_id,
            input,
            key: Some(key),
        };
        self.create_refund(&actor, command, &crate::platform::Nothing)
            .await
    }

    /// Refunds a payment (the route admits admins only).
    pub async fn create_refund(
        &self,
        actor: &Actor,
        command: RefundPayment,
        then: &dyn BeforeCommit<RefundOut>,
    ) -> Result<RefundOut, RefundError> {
        check(&command.input).map_err(RefundError::Invalid)?;
        let payment = self
            .payments
            .find_visible(actor, &command.payment_id)
            .await?;
        let refund = self
            .reserve(&payment, &command.input, command.key, actor)
            .await?;
        if refund.status != RefundState::Pending {
            return Ok(refund.into()); // settled by an earlier request with this key
        }
        match self.send(&payment, &refund, then).await? {
            Ok(settled) => Ok(settled.into()),
            Err(ProviderError::Rejected { code, message }) => Err(RefundError::Refused {
                refund_id: refund.id,
                code,
                message,
            }),
            Err(ProviderError::Unavailable(reason)) => {
                tracing::warn!(refund_id = %refund.id, %reason, "refund outcome unknown; it stays pending");
                Err(RefundError::OutcomeUnknown(refund.id))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Asks the provider for a reserved refund (idempotent per refund id) and settles what it
    /// answers; a refusal settles the refund as failed, releasing its amount. The inner error
    /// is the provider's, for the caller to word.
    pub(super) async fn send(
        &self,
        payment: &payments::Model,
        refund: &refunds::Model,
        then: &dyn BeforeCommit<RefundOut>,
    ) -> Result<Result<refunds::Model, ProviderError>, RefundError> {
        let provider = self.payments.provider_of(&payment.provider)?;
        let answer = provider
            .refund(&RefundRequest {
                refund_id: &refund.id,
                payment: payment.provider_ref(),
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
                self.settle(refund, &failed, &Nothing).await?;
                return Ok(Err(ProviderError::Rejected { code, message }));
            }
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(self.settle(refund, &found, then).await?))
    }

    /// Finds the refund this Idempotency-Key already started, or reserves a new one.
    async fn reserve(
        &self,
        payment: &payments::Model,
        input: &RefundIn,
        key: Option<String>,
        actor: &Actor,
    ) -> Result<refunds::Model, RefundError> {
        let core = &self.payments.core;
        let txn = core.begin().await?;
        if let Some(key) = &key
            && let Some(existing) = store::find_by_key(&txn, &payment.id, key).await?
        {
            return Ok(existing);
        }
        // The payment's row lock serializes reservations of one payment (SQLite's write lock
        // already does): what we read below cannot change until we commit.
        let locked = payment_store::lock(&txn, &payment.id).await?;
        if !locked.status.is_refundable() {
            return Err(RefundError::NotRefundable(locked.status));
        }
        let remaining = locked
            .amount
            .saturating_sub(store::held(&txn, &payment.id).await?);
        if remaining <= 0 {
            return Err(RefundError::FullyRefunded);
        }
        let amount = input.amount.unwrap_or(remaining);
        if amount > remaining {
            return Err(RefundError::ExceedsRemaining {
                remaining,
                asked: amount,
            });
        }
        let at = core.now();
        let refund = store::insert(
            &txn,
            refunds::ActiveModel {
                id: Set(ids::new_id(ids::REFUND)),
                payment_id: Set(locked.id.clone()),
                order_id: Set(locked.order_id.clone()),
                provider: Set(locked.provider.clone()),
                provider_reference: Set(None),
                amount: Set(amount),
                currency: Set(locked.currency.clone()),
                status: Set(RefundState::Pending),
                reason: Set(input.reason.clone()),
                failure_reason: Set(None),
                idempotency_key: Set(key),
                requested_by: Set(Some(actor.user_id.clone())),
                created_at: Set(at),
                updated_at: Set(at),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(refund)
    }

    /// Records what the provider said of a pending refund. A success moves the payment (and,
    /// through the orders' reaction, its order when refunded in full) with their events, once:
    /// a refund already settled is left as it is.
    pub(super) async fn settle(
        &self,
        refund: &refunds::Model,
        found: &ProviderRefund,
        then: &dyn BeforeCommit<RefundOut>,
    ) -> Result<refunds::Model, RefundError> {
        let core = &self.payments.core;
        let at = core.now();
        let txn = core.begin().await?;
        let (current, moved_to) = store::settle(&txn, &refund.id, found, at).await?;
        if moved_to == Some(RefundState::Succeeded) {
            self.record_success(&txn, &current, at).await?;
        }
        then.before_commit(&txn, &RefundOut::from(current.clone()))
            .await?;
        core.commit(txn).await?;
        Ok(current)
    }

    async fn record_success(
        &self,
        txn: &DatabaseTransaction,
        refund: &refunds::Model,
        at: DateTime<Utc>,
    ) -> Result<(), RefundError> {
        let payment = payment_store::lock(txn, &refund.payment_id).await?;
        let refunded = payment.amount_refunded.saturating_add(refund.amount);
        if refunded > payment.amount {
            // Only a refund made at the provider, outside this API, can do this; keep the
            // truth.
            tracing::error!(payment_id = %payment.id, refunded, amount = payment.amount,
                "more was refunded than was paid");
        }
        let status = if refunded >= payment.amount {
            PaymentStatus::Refunded
        } else {
            PaymentStatus::PartiallyRefunded
        };
        // A payment refunded after it succeeded on an order that was not pending any more
        // (see the orders' reaction to `payment.succeeded`) keeps its order's status.
        let mut current = payment.clone();
        current.amount_refunded = refunded;
        current.updated_at = at;
        if payment.status.is_refundable() {
            current.status = status;
        }
        payment_store::record_refunded(txn, &current).await?;
        revenue::count(txn, &[Move::refunded(at, &refund.currency, refund.amount)]).await?;
        let payment_out = PaymentOut::from(current);
        let refund_out = RefundOut::from(refund.clone());
        self.payments
            .core
            .outbox
            .record(txn, Event::PaymentRefunded(&payment_out, &refund_out), at)
            .await?;
        Ok(())
    }

    /// The refunds of a payment its owner or an admin may see.
    pub async fn list_refunds(
        &self,
        actor: &Actor,
        payment_id: &PaymentId,
        query: ListRefundsQuery,
    ) -> Result<Page<RefundOut>, RefundError> {
        let page = PageRequest::parse(query.limit, query.cursor.as_deref(), ids::REFUND)
            .map_err(RefundError::Invalid)?;
        let payment = self.payments.find_visible(actor, payment_id).await?;
        let rows = store::list(&self.payments.core.db, &payment.id, &page).await?;
        Ok(page.page(rows, |r| &r.id, RefundOut::from))
    }
}
