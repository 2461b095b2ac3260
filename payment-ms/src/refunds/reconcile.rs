//! Bringing our refunds in line with the provider's: refunds whose answer was lost, and
//! refunds made elsewhere (e.g. in the provider's dashboard).

use chrono::{DateTime, Utc};
use sea_orm::Set;
use shared::ids;

use super::entities::refunds;
use super::model::{RefundError, RefundState};
use super::service::Refunds;
use super::store;
use crate::payments::entities::payments;
use crate::payments::store as payment_store;
use crate::platform::Nothing;
use crate::providers::{ProviderError, ProviderRefund, RefundStatus};

impl Refunds {
    /// Settles our pending refunds of a payment from what the provider holds, records refunds
    /// made elsewhere, and sends again (same refund id, so at most once) pending ones the
    /// provider never received. `resend_before`: only pending refunds last touched before it
    /// are sent again, so a request still waiting for its answer is left alone.
    pub async fn sync(
        &self,
        payment: &payments::Model,
        resend_before: DateTime<Utc>,
    ) -> Result<(), RefundError> {
        let provider = self.payments.provider_of(&payment.provider)?;
        let held = provider.list_refunds(payment.provider_ref()).await?;
        let ours = store::of_payment(&self.payments.core.db, &payment.id).await?;
        for found in &held {
            let mine = ours.iter().find(|r| {
                found.refund_id.as_deref() == Some(r.id.as_str())
                    || r.provider_reference.as_deref() == Some(found.reference.as_str())
            });
            match mine {
                Some(refund) if refund.status == RefundState::Pending => {
                    self.settle(refund, found, &Nothing).await?;
                }
                Some(_) => {}
                None if found.status == RefundStatus::Succeeded => {
                    if let Some(refund) = self.record_external(payment, found).await? {
                        self.settle(&refund, found, &Nothing).await?;
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
            if refund.status == RefundState::Pending
                && !at_provider
                && refund.updated_at < resend_before
            {
                match self.send(payment, refund, &Nothing).await? {
                    Ok(_) | Err(ProviderError::Rejected { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// A pending row for a refund made outside this API; `None` when another replica
    /// recorded it first.
    async fn record_external(
        &self,
        payment: &payments::Model,
        found: &ProviderRefund,
    ) -> Result<Option<refunds::Model>, RefundError> {
        let db = &self.payments.core.db;
        let at = self.payments.core.now();
        let id = ids::new_id(ids::REFUND);
        let inserted = store::insert_external(
            db,
            refunds::ActiveModel {
                id: Set(id.clone()),
                payment_id: Set(payment.id.clone()),
                order_id: Set(payment.order_id.clone()),
                provider: Set(payment.provider.clone()),
                provider_reference: Set(Some(found.reference.clone())),
                amount: Set(found.amount),
                currency: Set(payment.currency.clone()),
                status: Set(RefundState::Pending),
                reason: Set(Some("refunded at the provider".to_owned())),
                failure_reason: Set(None),
                idempotency_key: Set(None),
                requested_by: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
            },
        )
        .await?;
        if !inserted {
            return Ok(None);
        }
        tracing::info!(payment_id = %payment.id, reference = %found.reference, amount = found.amount,
            "recorded a refund made at the provider");
        Ok(store::find(db, &id).await?)
    }

    /// Settles pending refunds whose answer was lost, oldest first; run by the periodic sweep.
    /// Answers how many payments were brought in line.
    pub async fn settle_pending(
        &self,
        at: DateTime<Utc>,
        batch: u64,
    ) -> Result<usize, RefundError> {
        // A request may still be waiting for its provider: leave its refund alone until it
        // times out.
        let grace = self.request_timeout * 2;
        let before = at - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::zero());
        let pending = store::pending_before(&self.payments.core.db, before, batch).await?;
        let mut settled = 0;
        let mut seen = Vec::new();
        for refund in pending {
            if seen.contains(&refund.payment_id) {
                continue;
            }
            seen.push(refund.payment_id.clone());
            let Some(payment) =
                payment_store::find(&self.payments.core.db, &refund.payment_id).await?
            else {
                continue;
            };
            match self.sync(&payment, before).await {
                Ok(()) => settled += 1,
                Err(e) => {
                    tracing::warn!(error = %e, refund_id = %refund.id, "could not settle a pending refund")
                }
            }
        }
        Ok(settled)
    }
}
