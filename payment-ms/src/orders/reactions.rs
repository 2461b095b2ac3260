//! What orders do when payments move, in the payment's transaction (so the two never
//! disagree): a started checkout makes its order `awaiting_payment`; a succeeded payment pays
//! it; a failed one makes it `payment_failed` (a new checkout retries); one canceled or expired
//! unpaid makes it `pending` again (editable); a payment refunded in full refunds it.

use async_trait::async_trait;
use sea_orm::{DatabaseTransaction, DbErr};

use super::model::OrderStatus;
use super::store::{Transition, move_order, move_orders};
use crate::events::{Event, Outbox, Reaction, Recorded};

pub struct OnPayments;

#[async_trait]
impl Reaction for OnPayments {
    async fn react(
        &self,
        txn: &DatabaseTransaction,
        recorded: &Recorded<'_>,
        outbox: &Outbox,
    ) -> Result<(), DbErr> {
        let Some((payment, to)) = target(recorded) else {
            return Ok(());
        };
        let reason = payment
            .failure_reason
            .as_deref()
            .filter(|_| to == OrderStatus::PaymentFailed);
        let transition = Transition {
            reason,
            ..Transition::system(to)
        };
        let (order, moved) =
            move_order(txn, outbox, &payment.order_id, transition, recorded.at).await?;
        if !moved && to == OrderStatus::Paid {
            paid_too_late(&payment.id, &order);
        }
        Ok(())
    }

    /// Payments that succeeded together (a bill run's) pay their orders with one move of them
    /// all; any other event as alone.
    async fn react_all(
        &self,
        txn: &DatabaseTransaction,
        events: &[Recorded<'_>],
        outbox: &Outbox,
    ) -> Result<(), DbErr> {
        let mut paid: Vec<(&str, &str)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for recorded in events {
            match target(recorded) {
                // A second payment of the same order is met as alone, after the first.
                Some((payment, OrderStatus::Paid)) if seen.insert(payment.order_id.as_str()) => {
                    paid.push((payment.order_id.as_str(), payment.id.as_str()))
                }
                Some(_) => self.react(txn, recorded, outbox).await?,
                None => {}
            }
        }
        if paid.is_empty() {
            return Ok(());
        }
        let at = events.first().map(|e| e.at).unwrap_or_default();
        let ids: Vec<&str> = paid.iter().map(|(order, _)| *order).collect();
        let payment_of: std::collections::HashMap<&str, &str> = paid.iter().copied().collect();
        let transition = Transition::system(OrderStatus::Paid);
        for (order, moved) in move_orders(txn, outbox, &ids, &transition, at).await? {
            if !moved {
                paid_too_late(payment_of.get(order.id.as_str()).unwrap_or(&""), &order);
            }
        }
        Ok(())
    }
}

/// The payment an event is about and where it moves its order, if it moves one.
fn target<'a>(recorded: &Recorded<'a>) -> Option<(&'a shared::api::PaymentOut, OrderStatus)> {
    match recorded.event {
        Event::PaymentSucceeded(p) => Some((p, OrderStatus::Paid)),
        Event::PaymentFailed(p) => Some((p, OrderStatus::PaymentFailed)),
        Event::PaymentCanceled(p) | Event::PaymentExpired(p) => Some((p, OrderStatus::Pending)),
        // The payment's public status, as its event carries it.
        Event::PaymentRefunded(p, _) if p.status == "refunded" => Some((p, OrderStatus::Refunded)),
        _ => None,
    }
}

/// Money arrived for an order that can no longer be paid (paid by another payment, or canceled
/// a moment before). Keep the record true and make it visible.
fn paid_too_late(payment_id: &str, order: &super::entities::orders::Model) {
    tracing::warn!(payment_id, order_id = %order.id, status = %order.status,
        "payment succeeded on an order that is not open; it needs a refund");
}
