//! Payment use cases: checkout, read, list, verify, cancel, and recording what a provider says.
//!
//! Every status change goes through [`Payments::apply`]: a conditional update from `pending`
//! plus its events, in one transaction. Whoever wins that update (a verify, a cancel, the
//! expiry sweep, on any replica) writes the events; everyone else changes nothing. So a change
//! is recorded once, however often or concurrently it is observed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};
use serde::Deserialize;
use shared::api::PaymentOut;
use shared::{FieldError, ids};

use super::entities::payments;
use super::model::{PaymentError, PaymentId, PaymentStatus, changes_nothing};
use super::store;
use crate::events::Event;
use crate::orders;
use crate::platform::pagination::{Page, PageRequest};
use crate::platform::{Actor, Core, Fault, validate};
use crate::providers::mock::{self, page::PageCheckout, page::PageCheckouts};
use crate::providers::{
    CheckoutLine, CloseReason, PaymentProvider, ProviderState, ProviderStatus, Providers,
};

/// The payments context, with what it needs: the platform, the providers, and how long a
/// checkout stays open.
#[derive(Clone)]
pub struct Payments {
    pub core: Core,
    pub providers: Providers,
    pub payment_ttl: Duration,
    /// Where a checkout holds its order's tracked lines.
    pub inventory: Arc<dyn crate::inventory::InventoryClient>,
    /// How long it holds them (the checkout then lasts no longer).
    pub inventory_hold: Duration,
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

#[derive(Debug, Deserialize)]
pub struct ListPaymentsQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub order_id: Option<String>,
    pub status: Option<String>,
    /// Admin only: the payments of one user. Others always see their own.
    pub user_id: Option<String>,
}

/// An order's line as a checkout shows it.
pub(super) fn checkout_line(item: orders::entities::order_items::Model) -> CheckoutLine {
    CheckoutLine {
        sku: item.sku,
        name: item.name,
        quantity: item.quantity,
        unit_price: item.unit_price,
        line_total: item.line_total,
    }
}

/// A new checkout's payment row, pending: `order` paid through `provider` as it `started`,
/// coming back to `urls` (success, cancel), open until `expires_at`.
pub(super) fn pending_payment(
    id: String,
    order: &orders::entities::orders::Model,
    (provider, started): (&str, &crate::providers::ProviderCheckout),
    (success_url, cancel_url): (String, String),
    metadata: serde_json::Value,
    (at, expires_at): (DateTime<Utc>, DateTime<Utc>),
) -> payments::Model {
    payments::Model {
        id,
        order_id: order.id.clone(),
        user_id: order.user_id.clone(),
        provider: provider.to_owned(),
        provider_reference: started.reference.clone(),
        checkout_url: started.checkout_url.clone(),
        status: PaymentStatus::Pending,
        amount: order.total_amount,
        amount_refunded: 0,
        currency: order.currency.clone(),
        success_url,
        cancel_url,
        metadata,
        failure_reason: None,
        created_at: at,
        updated_at: at,
        expires_at,
        provider_payment_reference: None,
        next_action: None,
        succeeded_at: None,
    }
}

impl Payments {
    /// The lines of the order a payment pays, as a checkout shows them.
    pub(super) async fn lines_of(&self, order_id: &str) -> Result<Vec<CheckoutLine>, DbErr> {
        Ok(orders::store::load_items(&self.core.db, order_id)
            .await?
            .into_iter()
            .map(checkout_line)
            .collect())
    }

    /// The payment that paid an order (succeeded, or refunded in part), if one did.
    pub async fn paid_of_order(&self, order_id: &str) -> Result<Option<PaymentId>, DbErr> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let paid = payments::Entity::find()
            .filter(payments::Column::OrderId.eq(order_id))
            .filter(
                payments::Column::Status
                    .is_in([PaymentStatus::Succeeded, PaymentStatus::PartiallyRefunded]),
            )
            .one(&self.core.db)
            .await?;
        Ok(paid.and_then(|p| PaymentId::parse(&p.id)))
    }

    /// The provider a payment was made with.
    pub fn provider_of(&self, name: &str) -> Result<Arc<dyn PaymentProvider>, Fault> {
        self.providers.get(name).ok_or_else(|| {
            Fault::Internal(anyhow::anyhow!(
                "payment uses provider {name}, which is not configured"
            ))
        })
    }

    /// The payment, if the actor may see it (its owner or an admin).
    pub async fn find_visible(
        &self,
        actor: &Actor,
        payment_id: &PaymentId,
    ) -> Result<payments::Model, PaymentError> {
        store::find_visible(&self.core.db, actor, payment_id.as_str())
            .await?
            .ok_or_else(|| PaymentError::NotFound(payment_id.to_string()))
    }

    pub async fn get_payment(
        &self,
        actor: &Actor,
        id: &PaymentId,
    ) -> Result<PaymentOut, PaymentError> {
        Ok(self.find_visible(actor, id).await?.into())
    }

    pub async fn list_payments(
        &self,
        actor: &Actor,
        query: ListPaymentsQuery,
    ) -> Result<Page<PaymentOut>, PaymentError> {
        let mut errors = Vec::new();
        validate::query_text(&mut errors, "user_id", query.user_id.as_deref());
        validate::query_id(
            &mut errors,
            "order_id",
            ids::ORDER,
            query.order_id.as_deref(),
        );
        validate::finish(errors).map_err(PaymentError::Invalid)?;
        let page = PageRequest::parse(query.limit, query.cursor.as_deref(), ids::PAYMENT)
            .map_err(PaymentError::Invalid)?;
        let status = match &query.status {
            None => None,
            Some(status) => Some(PaymentStatus::parse(status).ok_or_else(|| {
                PaymentError::Invalid(vec![FieldError::new(
                    "status",
                    shared::problem::one_of(PaymentStatus::ALL.map(PaymentStatus::as_str)),
                )])
            })?),
        };
        let rows = store::list(
            &self.core.db,
            actor,
            query.user_id.as_deref(),
            query.order_id.as_deref(),
            status,
            &page,
        )
        .await?;
        Ok(page.page(rows, |p| &p.id, PaymentOut::from))
    }

    /// Asks the provider and records what changed. Verifying a settled payment changes nothing.
    pub async fn verify_payment(
        &self,
        actor: &Actor,
        id: &PaymentId,
    ) -> Result<PaymentOut, PaymentError> {
        let payment = self.find_visible(actor, id).await?;
        Ok(self
            .refresh(&payment, self.core.now())
            .await?
            .payment
            .into())
    }

    pub async fn cancel_payment(
        &self,
        actor: &Actor,
        id: &PaymentId,
    ) -> Result<PaymentOut, PaymentError> {
        let payment = self.find_visible(actor, id).await?;
        if payment.status != PaymentStatus::Pending {
            return Err(PaymentError::NotCancelable(format!(
                "The payment is {}; only a pending payment can be canceled",
                payment.status
            )));
        }
        let current = self
            .close_payment(&payment, CloseReason::Canceled)
            .await?
            .payment;
        if current.status != PaymentStatus::Canceled {
            return Err(PaymentError::NotCancelable(format!(
                "The payment became {} before it could be canceled",
                current.status
            )));
        }
        Ok(current.into())
    }

    /// Cancels every pending payment of a user (whose account is gone) at its provider. One
    /// the buyer paid just before stays succeeded. Answers how many this call canceled.
    pub async fn cancel_pending_of_user(&self, user_id: &str) -> Result<usize, PaymentError> {
        let mut canceled = 0;
        let mut seen = std::collections::HashSet::new();
        loop {
            let batch: Vec<payments::Model> = store::pending_of_user(&self.core.db, user_id, 100)
                .await?
                .into_iter()
                .filter(|p| seen.insert(p.id.clone()))
                .collect();
            if batch.is_empty() {
                return Ok(canceled);
            }
            for payment in &batch {
                let applied = self.close_payment(payment, CloseReason::Canceled).await?;
                if applied.moved && applied.payment.status == PaymentStatus::Canceled {
                    canceled += 1;
                }
            }
        }
    }

    /// Brings a pending payment up to date with its provider; if it is still open at `at`,
    /// past its expiry time, closes it.
    pub async fn refresh(
        &self,
        payment: &payments::Model,
        at: DateTime<Utc>,
    ) -> Result<Applied, PaymentError> {
        if payment.status != PaymentStatus::Pending {
            return Ok(Applied::unmoved(payment.clone()));
        }
        let provider = self.provider_of(&payment.provider)?;
        let mut status = provider.fetch_status(payment.provider_ref()).await?;
        if status.status == ProviderStatus::Pending && at >= payment.expires_at {
            status = provider
                .close(payment.provider_ref(), CloseReason::Expired)
                .await?;
        }
        self.apply(payment, status).await
    }

    /// Closes a pending payment's checkout at the provider, then records the outcome (which is
    /// a success if the buyer paid just before).
    pub async fn close_payment(
        &self,
        payment: &payments::Model,
        reason: CloseReason,
    ) -> Result<Applied, PaymentError> {
        let provider = self.provider_of(&payment.provider)?;
        let status = provider.close(payment.provider_ref(), reason).await?;
        self.apply(payment, status).await
    }

    /// Records a provider state on a pending payment, with its events, once. Answers the
    /// payment as it now is.
    pub async fn apply(
        &self,
        payment: &payments::Model,
        provider_state: ProviderState,
    ) -> Result<Applied, PaymentError> {
        if changes_nothing(payment, &provider_state) {
            return Ok(Applied::unmoved(payment.clone()));
        }
        let at = self.core.now();
        let txn = self.core.begin().await?;
        let applied = self.apply_in(&txn, payment, &provider_state, at).await?;
        self.core.commit(txn).await?;
        Ok(applied)
    }

    /// [`apply`](Self::apply) inside the caller's transaction. The payment's events are
    /// recorded here; what they mean for its order is the orders' reaction to them.
    pub(super) async fn apply_in(
        &self,
        txn: &DatabaseTransaction,
        payment: &payments::Model,
        provider_state: &ProviderState,
        at: DateTime<Utc>,
    ) -> Result<Applied, PaymentError> {
        let change = match &provider_state.status {
            ProviderStatus::Pending => None,
            ProviderStatus::Succeeded => Some((PaymentStatus::Succeeded, None)),
            ProviderStatus::Failed { reason } => {
                Some((PaymentStatus::Failed, Some(reason.clone())))
            }
            ProviderStatus::Canceled => Some((PaymentStatus::Canceled, None)),
            ProviderStatus::Expired => Some((PaymentStatus::Expired, None)),
        };
        let to = change.as_ref().map(|(to, _)| *to);
        let (current, moved) =
            store::record_state(txn, &payment.id, provider_state, change, at).await?;
        let Some(to) = to.filter(|_| moved) else {
            // Still pending (only what the buyer must do, or the charge, changed), or someone
            // else recorded a change first: theirs stands, with its events.
            return Ok(Applied::unmoved(current));
        };
        let out = PaymentOut::from(current.clone());
        let event = match to {
            PaymentStatus::Succeeded => Event::PaymentSucceeded(&out),
            PaymentStatus::Failed => Event::PaymentFailed(&out),
            PaymentStatus::Canceled => Event::PaymentCanceled(&out),
            _ => Event::PaymentExpired(&out),
        };
        self.core.outbox.record(txn, event, at).await?;
        Ok(Applied {
            payment: current,
            moved: true,
        })
    }
}

/// The mock provider's page shows this context's payments with that provider.
#[async_trait]
impl PageCheckouts for Payments {
    async fn find(&self, payment_id: &str) -> Result<Option<PageCheckout>, DbErr> {
        Ok(store::find(&self.core.db, payment_id)
            .await?
            .filter(|p| p.provider == mock::NAME)
            .map(|p| PageCheckout {
                pending: p.status == PaymentStatus::Pending,
                id: p.id,
                amount: p.amount,
                currency: p.currency,
                provider_reference: p.provider_reference,
                provider_payment_reference: p.provider_payment_reference,
                expires_at: p.expires_at,
                success_url: p.success_url,
                cancel_url: p.cancel_url,
            }))
    }

    async fn lines(&self, payment_id: &str) -> Result<Vec<CheckoutLine>, DbErr> {
        let Some(payment) = store::find(&self.core.db, payment_id).await? else {
            return Ok(Vec::new());
        };
        self.lines_of(&payment.order_id).await
    }
}

/// An order's open checkouts are this context's payments.
#[async_trait]
impl orders::service::Checkouts for Payments {
    type Error = PaymentError;

    async fn close_open(&self, order_id: &str, expired: bool) -> Result<(), PaymentError> {
        let reason = if expired {
            CloseReason::Expired
        } else {
            CloseReason::Canceled
        };
        for payment in &store::pending_of_order(&self.core.db, order_id).await? {
            self.close_payment(payment, reason).await?;
        }
        Ok(())
    }
}
