//! What the built-in inventory does when orders and payments move, in their transaction: an
//! order paid commits its holds (one paid after its holds lapsed and their stock went elsewhere
//! becomes `requires_action`, saying which SKUs are short); a checkout that ended unpaid, or an
//! order canceled or expired, releases them.

use async_trait::async_trait;
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr};

use super::builtin::{commit_order, orders_holding, release_where};
use super::entities::stock_reservations::Column;
use crate::events::{Event, Outbox, Reaction, Recorded};
use crate::orders::model::OrderStatus;
use crate::orders::store::{Transition, move_order};

pub struct OnOrdersAndPayments;

#[async_trait]
impl Reaction for OnOrdersAndPayments {
    async fn react(
        &self,
        txn: &DatabaseTransaction,
        recorded: &Recorded<'_>,
        outbox: &Outbox,
    ) -> Result<(), DbErr> {
        let at = recorded.at;
        match recorded.event {
            Event::OrderPaid(order) => {
                let short = commit_order(txn, &order.id, at).await?;
                if short.is_empty() {
                    return Ok(());
                }
                let reason = format!(
                    "paid after its stock hold lapsed; short of {}: refund it, or restock and \
                     move it to processing",
                    short.join(", ")
                );
                let transition = Transition {
                    reason: Some(&reason),
                    ..Transition::system(OrderStatus::RequiresAction)
                };
                move_order(txn, outbox, &order.id, transition, at)
                    .await
                    .map(drop)
            }
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

    /// Orders paid together (a bill run's) are looked up with one read of their holds; those
    /// holding stock are committed as alone, every other event too.
    async fn react_all(
        &self,
        txn: &DatabaseTransaction,
        events: &[Recorded<'_>],
        outbox: &Outbox,
    ) -> Result<(), DbErr> {
        let paid: Vec<&str> = events
            .iter()
            .filter_map(|e| match e.event {
                Event::OrderPaid(order) => Some(order.id.as_str()),
                _ => None,
            })
            .collect();
        // One order (a checkout's): no read more than alone.
        let holding = if paid.len() > 1 {
            orders_holding(txn, &paid).await?
        } else {
            paid.iter().map(|id| (*id).to_owned()).collect()
        };
        for recorded in events {
            let alone = match recorded.event {
                Event::OrderPaid(order) => holding.contains(order.id.as_str()),
                _ => true,
            };
            if alone {
                self.react(txn, recorded, outbox).await?;
            }
        }
        Ok(())
    }
}
