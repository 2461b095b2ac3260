//! Starting a payment: a checkout of an order at a provider. The order's earlier checkouts are
//! closed first (one payable checkout per order), what its tracked lines need of the inventory is
//! held for the checkout's life, and the provider is called with no lock held.

use shared::api::{CheckoutIn, PaymentOut};
use shared::{FieldError, ids};

use super::model::{PaymentError, PaymentStatus, changes_nothing};
use super::service::{Payments, pending_payment};
use super::store;
use crate::events::Event;
use crate::inventory::Hold;
use crate::orders;
use crate::orders::model::{OrderId, OrderStatus};
use crate::platform::db::after;
use crate::platform::{Actor, BeforeCommit, Fault, validate};
use crate::providers::{CheckoutRequest, CloseReason, Payable};

impl Payments {
    /// Starts paying an order: closes the order's earlier open checkouts (one order, one
    /// payable checkout at a time, so a buyer cannot pay twice), then opens a new one at the
    /// provider.
    pub async fn checkout(
        &self,
        actor: &Actor,
        order_id: &OrderId,
        input: CheckoutIn,
        then: &dyn BeforeCommit<PaymentOut>,
    ) -> Result<PaymentOut, PaymentError> {
        self.checkout_as(actor, order_id, input, then, None).await
    }

    /// [`Self::checkout`], with the new payment's id chosen by the caller (a billing charge's,
    /// kept for its reruns): the provider's idempotency key comes from it, so a rerun after a
    /// crash meets the charge the provider already made. When that payment exists already,
    /// it is answered as it stands and nothing else happens.
    #[tracing::instrument(skip_all, fields(order_id))]
    pub async fn checkout_as(
        &self,
        actor: &Actor,
        order_id: &OrderId,
        input: CheckoutIn,
        then: &dyn BeforeCommit<PaymentOut>,
        chosen_id: Option<String>,
    ) -> Result<PaymentOut, PaymentError> {
        let mut errors = Vec::new();
        validate::url(&mut errors, "success_url", &input.success_url);
        validate::url(&mut errors, "cancel_url", &input.cancel_url);
        validate::metadata(&mut errors, &input.metadata);
        if let Some(method) = &input.payment_method {
            validate::payment_method(&mut errors, method);
        }
        let provider_name = input
            .provider
            .clone()
            .unwrap_or_else(|| self.providers.default_name().to_owned());
        let provider = match self.providers.get(&provider_name) {
            Some(provider) if errors.is_empty() => provider,
            found => {
                if found.is_none() {
                    errors.push(FieldError::new(
                        "provider",
                        format!("must be one of: {}", self.providers.names().join(", ")),
                    ));
                }
                return Err(PaymentError::Invalid(errors));
            }
        };

        let core = &self.core;
        let order = orders::service::find_visible(core, actor, order_id).await?;
        if order.user_id != actor.user_id {
            return Err(PaymentError::NotOwner);
        }
        if let Some(id) = &chosen_id
            && let Some(made) = store::find(&core.db, id).await?
        {
            if made.order_id != order.id {
                return Err(PaymentError::Fault(Fault::Internal(anyhow::anyhow!(
                    "payment {id} belongs to order {}, not {}",
                    made.order_id,
                    order.id
                ))));
            }
            return Ok(made.into());
        }
        orders::service::ensure_payable(&order, core.now())?;

        // Close earlier checkouts first. If one of them was paid meanwhile, the order is paid.
        for earlier in &store::pending_of_order(&core.db, &order.id).await? {
            let closed = self
                .close_payment(earlier, CloseReason::Canceled)
                .await?
                .payment;
            if closed.status == PaymentStatus::Succeeded {
                return Err(PaymentError::JustPaid(closed.id));
            }
        }

        let lines = self.lines_of(&order.id).await?;
        let at = core.now();
        let payment_id = chosen_id.unwrap_or_else(|| ids::new_id(ids::PAYMENT));
        let mut expires_at = after(at, self.payment_ttl).min(order.expires_at);
        // The tracked lines' stock, held for the checkout's life (it lasts no longer), before
        // the provider is called and outside any transaction that call would wait in.
        let hold_until = after(at, self.inventory_hold).min(expires_at);
        // An invoice's order holds no stock (and never waits for an inventory service).
        let goods = lines
            .iter()
            .filter(|l| l.sku != orders::service::INVOICE_SKU);
        let wants = crate::inventory::wants(goods.map(|l| (l.sku.as_str(), l.quantity)));
        let held = self
            .inventory
            .reserve(Hold {
                order_id: &order.id,
                payment_id: &payment_id,
                lines: &wants,
                expires_at: hold_until,
                at,
            })
            .await?;
        if held {
            expires_at = hold_until;
        }
        let started = provider
            .start_checkout(&CheckoutRequest {
                payment_id: &payment_id,
                payable: Payable::Order(&order.id),
                amount: order.total_amount,
                currency: &order.currency,
                lines: &lines,
                success_url: &input.success_url,
                cancel_url: &input.cancel_url,
                expires_at,
                payment_method: input.payment_method.as_deref(),
            })
            .await;
        let started = match started {
            Ok(started) => started,
            Err(e) => {
                if held {
                    self.release_holds(&payment_id).await;
                }
                return Err(e.into());
            }
        };

        let payment = pending_payment(
            payment_id,
            &order,
            (provider.name(), &started),
            (input.success_url, input.cancel_url),
            input.metadata.unwrap_or_else(|| serde_json::json!({})),
            (at, expires_at),
        );
        let txn = core.begin().await?;
        // Re-read under the transaction's lock: the order may have changed since we looked.
        let locked = orders::store::lock(&txn, &order.id).await?;
        let refused = orders::service::still_payable(&order, &locked, at);
        if let Err(refusal) = refused {
            drop(txn);
            if let Err(e) = provider
                .close(payment.provider_ref(), CloseReason::Canceled)
                .await
            {
                tracing::warn!(error = %e, payment_id = %payment.id, "could not close an unused checkout");
            }
            if held {
                self.release_holds(&payment.id).await;
            }
            return Err(refusal.into());
        }
        store::insert(&txn, &payment).await?;
        // Its order now waits for this payment (from `pending`, or `payment_failed` on a retry).
        let awaiting = orders::store::Transition::system(OrderStatus::AwaitingPayment);
        orders::store::move_locked(&txn, &core.outbox, locked, awaiting, at).await?;
        let created = PaymentOut::from(payment.clone());
        core.outbox
            .record(&txn, Event::PaymentCreated(&created), at)
            .await?;
        // A server-side charge may be settled already; record it with the creation.
        let out = if changes_nothing(&payment, &started.state) {
            created
        } else {
            PaymentOut::from(
                self.apply_in(&txn, &payment, &started.state, at)
                    .await?
                    .payment,
            )
        };
        then.before_commit(&txn, &out).await?;
        core.commit(txn).await?;
        Ok(out)
    }

    /// Gives back what a checkout that never started held; if that fails, the holds expire.
    async fn release_holds(&self, payment_id: &str) {
        if let Err(e) = self.inventory.release(payment_id, self.core.now()).await {
            tracing::warn!(error = %e, payment_id, "could not release a checkout's stock holds; they expire");
        }
    }
}
