//! Charging many orders' saved payment methods at once (a bill run's charges). The plain ones
//! (an open order with no checkout pending and nothing to hold, a payment id not used yet) are
//! started at the provider together and recorded in one transaction of a few statements: the
//! payments inserted, the orders moved to `awaiting_payment`, the payments settled, their events
//! recorded together (so the reactions pay the orders and what they bill, together too). Each is
//! what a checkout of its own would record; anything else is left to one.

use std::collections::{HashMap, HashSet};

use sea_orm::EntityTrait;
use shared::api::PaymentOut;

use super::entities::payments;
use super::model::{PaymentError, PaymentStatus, changes_nothing};
use super::revenue::{self, Move};
use super::service::{Payments, checkout_line, pending_payment};
use crate::events::Event;
use crate::events::outbox::CHUNK;
use crate::orders;
use crate::orders::entities::orders as order_rows;
use crate::orders::model::{OrderError, OrderStatus};
use crate::platform::db::{after, find_each};
use crate::platform::validate;
use crate::providers::{
    CheckoutLine, CheckoutRequest, CloseReason, Payable, ProviderCheckout, ProviderError,
    ProviderStatus,
};

/// A charge of an order's saved payment method, for its owner.
#[derive(Debug)]
pub struct SavedCharge {
    pub user_id: String,
    pub order_id: String,
    /// The payment's id, chosen (and kept) by the caller: the provider's idempotency key.
    pub payment_id: String,
    pub payment_method: String,
    /// Where a buyer would come back to, had the charge needed them.
    pub return_url: String,
    pub metadata: serde_json::Value,
}

/// What became of a charge.
pub enum Charged {
    /// Recorded: the payment as it now is (succeeded, failed, or waiting on the customer).
    Recorded(Box<PaymentOut>),
    /// The provider refused it (a missing payment method, as a declined card): nothing recorded.
    Refused(ProviderError),
    /// The order can no longer be paid (its checkout was closed at the provider again).
    NotPayable(OrderError),
    /// Not made here: to be made by a checkout of its own, with the same payment id.
    Alone,
}

impl Payments {
    /// Charges `charges` with the default provider, together where they are plain. Answers
    /// each one's outcome, in their order.
    pub async fn charge_saved_all(
        &self,
        charges: &[SavedCharge],
    ) -> Result<Vec<Charged>, PaymentError> {
        let core = &self.core;
        let Some(provider) = self.providers.get(self.providers.default_name()) else {
            return Ok(charges.iter().map(|_| Charged::Alone).collect());
        };
        let at = core.now();
        let order_ids: Vec<&str> = charges.iter().map(|c| c.order_id.as_str()).collect();
        let ids: HashSet<&str> = charges.iter().map(|c| c.payment_id.as_str()).collect();
        let found: HashMap<String, order_rows::Model> =
            find_each::<order_rows::Entity, _>(&core.db, order_rows::Column::Id, &order_ids, false)
                .await?
                .into_iter()
                .map(|o| (o.id.clone(), o))
                .collect();
        let lines: HashMap<String, Vec<CheckoutLine>> =
            orders::movement::items_of(&core.db, &order_ids)
                .await?
                .into_iter()
                .map(|(order, items)| (order, items.into_iter().map(checkout_line).collect()))
                .collect();
        // An order with a payment already (a checkout pending, or this very payment made by an
        // earlier run) goes through a checkout of its own, which closes or answers it.
        let made = find_each::<payments::Entity, _>(
            &core.db,
            payments::Column::OrderId,
            &order_ids,
            false,
        )
        .await?;
        let busy: HashSet<String> = made
            .into_iter()
            .filter(|p| p.status == PaymentStatus::Pending || ids.contains(p.id.as_str()))
            .map(|p| p.order_id)
            .collect();
        // Two charges with one payment id are not told apart here: none is batched.
        let ids_unique = ids.len() == charges.len();
        let no_lines = Vec::new();
        let mut plain = Vec::new();
        let mut seen = HashSet::new();
        for (i, charge) in charges.iter().enumerate() {
            let Some(order) = found.get(&charge.order_id) else {
                continue;
            };
            let order_lines = lines.get(&order.id).unwrap_or(&no_lines);
            let mut errors = Vec::new();
            validate::payment_method(&mut errors, &charge.payment_method);
            let is_plain = errors.is_empty()
                && ids_unique
                && seen.insert(order.id.as_str())
                && order.user_id == charge.user_id
                && !busy.contains(&order.id)
                && orders::service::ensure_payable(order, at).is_ok()
                && order_lines
                    .iter()
                    .all(|l| l.sku == orders::service::INVOICE_SKU);
            if is_plain {
                plain.push((i, order, order_lines));
            }
        }
        let mut outcomes: Vec<Charged> = charges.iter().map(|_| Charged::Alone).collect();
        if plain.is_empty() {
            return Ok(outcomes);
        }
        let requests: Vec<CheckoutRequest<'_>> = plain
            .iter()
            .map(|(i, order, order_lines)| {
                let charge = &charges[*i];
                CheckoutRequest {
                    payment_id: &charge.payment_id,
                    payable: Payable::Order(&order.id),
                    amount: order.total_amount,
                    currency: &order.currency,
                    lines: order_lines,
                    success_url: &charge.return_url,
                    cancel_url: &charge.return_url,
                    expires_at: after(at, self.payment_ttl).min(order.expires_at),
                    payment_method: Some(&charge.payment_method),
                }
            })
            .collect();
        let started = provider.start_checkouts(&requests).await;

        let mut made: Vec<(usize, payments::Model, ProviderCheckout)> = Vec::new();
        for ((i, order, _), (request, started)) in plain.iter().zip(requests.iter().zip(started)) {
            match started {
                Ok(started) => {
                    let charge = &charges[*i];
                    let payment = pending_payment(
                        charge.payment_id.clone(),
                        order,
                        (provider.name(), &started),
                        (charge.return_url.clone(), charge.return_url.clone()),
                        charge.metadata.clone(),
                        (at, request.expires_at),
                    );
                    made.push((*i, payment, started));
                }
                Err(ProviderError::Rejected { code, message }) => {
                    outcomes[*i] = Charged::Refused(ProviderError::Rejected { code, message });
                }
                // Unreachable, or worse: tried again alone (the same payment id, so nothing
                // is charged twice).
                Err(_) => {}
            }
        }

        let txn = core.begin_batch().await?;
        let wanted: Vec<&str> = made.iter().map(|(_, p, _)| p.order_id.as_str()).collect();
        let locked = orders::store::lock_all(&txn, &wanted).await?;
        let locked: HashMap<&str, &order_rows::Model> =
            locked.iter().map(|o| (o.id.as_str(), o)).collect();
        let mut payable = Vec::new();
        let mut refused = Vec::new();
        for (i, payment, started) in made {
            let before = found.get(&payment.order_id);
            let now = locked.get(payment.order_id.as_str()).copied();
            let check = match (before, now) {
                (Some(before), Some(now)) => orders::service::still_payable(before, now, at),
                _ => Err(OrderError::NotPayable("The order is gone".to_owned())),
            };
            match check {
                Ok(()) => payable.push((i, payment, started)),
                Err(e) => {
                    outcomes[i] = Charged::NotPayable(e);
                    refused.push(payment);
                }
            }
        }
        // A success without a reference of its own is written as it ends (one row version,
        // not a pending one updated in the same transaction); its events still tell both.
        let settles_at_once = |s: &ProviderCheckout| {
            s.state.status == ProviderStatus::Succeeded && s.state.payment_reference.is_none()
        };
        for chunk in payable.chunks(CHUNK) {
            let rows = chunk.iter().map(|(_, p, started)| {
                let mut row = p.clone();
                if settles_at_once(started) {
                    row.status = PaymentStatus::Succeeded;
                    row.succeeded_at = Some(at);
                }
                payments::ActiveModel::from(row)
            });
            payments::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await?;
        }
        // Their orders now wait for these payments, as a checkout's does.
        let awaiting = orders::store::Transition::system(OrderStatus::AwaitingPayment);
        let to_move: Vec<order_rows::Model> = payable
            .iter()
            .filter_map(|(_, p, _)| locked.get(p.order_id.as_str()).map(|o| (*o).clone()))
            .collect();
        orders::store::move_locked_all(&txn, &core.outbox, to_move, &awaiting, at).await?;
        let created: Vec<PaymentOut> = payable
            .iter()
            .map(|(_, p, _)| PaymentOut::from(p.clone()))
            .collect();
        let events: Vec<Event<'_>> = created.iter().map(Event::PaymentCreated).collect();
        core.outbox.record_all(&txn, &events, at).await?;

        // Settled at once: the successes without a reference of their own together (written
        // so above), the rest (declines, references, actions) as a checkout records them.
        let (together, apart): (Vec<_>, Vec<_>) = payable
            .into_iter()
            .partition(|(_, _, s)| settles_at_once(s));
        let mut succeeded = Vec::with_capacity(together.len());
        for (i, mut payment, _) in together {
            payment.status = PaymentStatus::Succeeded;
            payment.succeeded_at = Some(at);
            let out = PaymentOut::from(payment);
            outcomes[i] = Charged::Recorded(Box::new(out.clone()));
            succeeded.push(out);
        }
        let events: Vec<Event<'_>> = succeeded.iter().map(Event::PaymentSucceeded).collect();
        core.outbox.record_all(&txn, &events, at).await?;
        let takings: Vec<Move<'_>> = succeeded
            .iter()
            .map(|p| Move::paid(at, &p.currency, p.amount))
            .collect();
        revenue::count(&txn, &takings).await?;
        for (i, payment, started) in apart {
            let out = if changes_nothing(&payment, &started.state) {
                PaymentOut::from(payment)
            } else {
                let applied = self.apply_in(&txn, &payment, &started.state, at).await?;
                PaymentOut::from(applied.payment)
            };
            outcomes[i] = Charged::Recorded(Box::new(out));
        }
        core.commit(txn).await?;
        for payment in &refused {
            if let Err(e) = provider
                .close(payment.provider_ref(), CloseReason::Canceled)
                .await
            {
                tracing::warn!(error = %e, payment_id = %payment.id, "could not close an unused charge");
            }
        }
        Ok(outcomes)
    }
}
