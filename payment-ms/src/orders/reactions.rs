//! What orders do when payments move: a succeeded payment pays its order, a payment refunded
//! in full refunds it. Run in the payment's transaction, so the two never disagree.

use async_trait::async_trait;
use sea_orm::{DatabaseTransaction, DbErr};

use super::model::OrderStatus;
use super::store::move_order;
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
        match recorded.event {
            Event::PaymentSucceeded(payment) => {
                let (_, paid) = move_order(
                    txn,
                    outbox,
                    &payment.order_id,
                    (OrderStatus::Pending, OrderStatus::Paid),
                    recorded.at,
                )
                .await?;
                if !paid {
                    // Money arrived for an order that is no longer pending (paid by another
                    // payment, or canceled a moment before). Keep the record true and make it
                    // visible.
                    tracing::warn!(payment_id = %payment.id, order_id = %payment.order_id,
                        "payment succeeded on an order that is not pending; it needs a refund");
                }
            }
            // The payment's public status, as its event carries it.
            Event::PaymentRefunded(payment, _) if payment.status == "refunded" => {
                move_order(
                    txn,
                    outbox,
                    &payment.order_id,
                    (OrderStatus::Paid, OrderStatus::Refunded),
                    recorded.at,
                )
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}
