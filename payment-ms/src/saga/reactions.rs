//! What the sagas do when payments and orders move, in their transaction: a succeeded payment's
//! saga is to commit; a checkout that ended unpaid, or an order canceled or expired, has its
//! reservation to release. The calls themselves are the worker's, after the commit.

use std::sync::Arc;

use async_trait::async_trait;
use sea_orm::{DatabaseTransaction, DbErr};
use tokio::sync::Notify;

use super::{state, store};
use crate::events::{Event, Outbox, Reaction, Recorded};

pub struct OnOrdersAndPayments {
    pub due: Arc<Notify>,
}

#[async_trait]
impl Reaction for OnOrdersAndPayments {
    async fn react(
        &self,
        txn: &DatabaseTransaction,
        recorded: &Recorded<'_>,
        _outbox: &Outbox,
    ) -> Result<(), DbErr> {
        let at = recorded.at;
        let waiting = [state::AWAITING_PAYMENT];
        let moved = match recorded.event {
            Event::PaymentSucceeded(payment) => {
                store::move_saga(txn, &payment.id, &waiting, state::COMMITTING, at, at).await?
            }
            Event::PaymentFailed(payment)
            | Event::PaymentCanceled(payment)
            | Event::PaymentExpired(payment) => {
                store::move_saga(txn, &payment.id, &waiting, state::RELEASING, at, at).await?
            }
            Event::OrderCanceled(order) | Event::OrderExpired(order) => {
                store::move_order_sagas(txn, &order.id, &waiting, state::RELEASING, at).await? > 0
            }
            _ => false,
        };
        if moved {
            // Before the commit: the worker may look too early, and then its poll finds it.
            self.due.notify_one();
        }
        Ok(())
    }

    /// Payments that succeeded together (a bill run's) move their sagas with one update.
    async fn react_all(
        &self,
        txn: &DatabaseTransaction,
        events: &[Recorded<'_>],
        outbox: &Outbox,
    ) -> Result<(), DbErr> {
        let mut succeeded = Vec::new();
        for recorded in events {
            match recorded.event {
                Event::PaymentSucceeded(payment) => succeeded.push(payment.id.as_str()),
                _ => self.react(txn, recorded, outbox).await?,
            }
        }
        let Some(at) = events.first().map(|e| e.at) else {
            return Ok(());
        };
        let waiting = [state::AWAITING_PAYMENT];
        if store::move_sagas_of_payments(txn, &succeeded, &waiting, state::COMMITTING, at).await?
            > 0
        {
            self.due.notify_one();
        }
        Ok(())
    }
}
