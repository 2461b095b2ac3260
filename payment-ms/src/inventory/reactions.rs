//! What the built-in inventory does when orders and payments move, in their transaction: an
//! order paid commits its holds; a checkout that ended unpaid, or an order canceled or expired,
//! releases them.

use async_trait::async_trait;
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr};

use super::builtin::{commit_order, release_where};
use super::entities::stock_reservations::Column;
use crate::events::{Event, Outbox, Reaction, Recorded};

pub struct OnOrdersAndPayments;

#[async_trait]
impl Reaction for OnOrdersAndPayments {
    async fn react(
        &self,
        txn: &DatabaseTransaction,
        recorded: &Recorded<'_>,
        _outbox: &Outbox,
    ) -> Result<(), DbErr> {
        let at = recorded.at;
        match recorded.event {
            Event::OrderPaid(order) => commit_order(txn, &order.id, at).await,
            Event::OrderCanceled(order) | Event::OrderExpired(order) => {
                release_where(txn, Column::OrderId.eq(order.id.as_str()), at)
                    .await
                    .map(drop)
            }
            Event::PaymentFailed(payment)
            | Event::PaymentCanceled(payment)
            | Event::PaymentExpired(payment) => {
                release_where(txn, Column::PaymentId.eq(payment.id.as_str()), at)
                    .await
                    .map(drop)
            }
            _ => Ok(()),
        }
    }
}
