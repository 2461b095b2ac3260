//! What orders do when payments move, in the payment's transaction (so the two never
//! disagree): a started checkout makes its order `awaiting_payment`; a succeeded payment pays
//! it; a failed one makes it `payment_failed` (a new checkout retries); one canceled or expired
//! unpaid makes it `pending` again (editable); a payment refunded in full refunds it.

use async_trait::async_trait;
use sea_orm::{DatabaseTransaction, DbErr};

use super::model::OrderStatus;
use super::store::{Transition, move_order};
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
        let (payment, to) = match recorded.event {
            Event::PaymentSucceeded(p) => (p, OrderStatus::Paid),
            Event::PaymentFailed(p) => (p, OrderStatus::PaymentFailed),
            Event::PaymentCanceled(p) | Event::PaymentExpired(p) => (p, OrderStatus::Pending),
            // The payment's public status, as its event carries it.
            Event::PaymentRefunded(p, _) if p.status == "refunded" => (p, OrderStatus::Refunded),
            _ => return Ok(()),
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
            // Money arrived for an order that can no longer be paid (paid by another payment,
            // or canceled a moment before). Keep the record true and make it visible.
            tracing::warn!(payment_id = %payment.id, order_id = %payment.order_id,
                status = %order.status,
                "payment succeeded on an order that is not open; it needs a refund");
        }
        Ok(())
    }
}
