//! What billing does when orders move: an invoice's order paid pays the invoice, in the
//! payment's transaction, so the two never disagree.

use async_trait::async_trait;
use sea_orm::{DatabaseTransaction, DbErr};

use super::{clocks, invoices, store};
use crate::events::{Event, Outbox, Reaction, Recorded};

pub struct OnOrders;

#[async_trait]
impl Reaction for OnOrders {
    async fn react(
        &self,
        txn: &DatabaseTransaction,
        recorded: &Recorded<'_>,
        outbox: &Outbox,
    ) -> Result<(), DbErr> {
        let Event::OrderPaid(order) = recorded.event else {
            return Ok(());
        };
        let Some(invoice) = store::invoice_of_order(txn, &order.id).await? else {
            return Ok(());
        };
        let Some(invoice) = store::lock_invoice(txn, &invoice.id).await? else {
            return Ok(());
        };
        // A subscription on a test clock is paid at the clock's time.
        let clock = match &invoice.subscription_id {
            Some(id) => store::lock_subscription(txn, id)
                .await?
                .and_then(|s| s.test_clock_id),
            None => None,
        };
        let at = match clock {
            Some(clock) => clocks::time_of(txn, &clock).await?.unwrap_or(recorded.at),
            None => recorded.at,
        };
        if invoice.status != super::model::InvoiceStatus::Open {
            tracing::warn!(invoice_id = %invoice.id, order_id = %order.id, status = %invoice.status,
                "an invoice's order was paid while the invoice is not open; it needs a refund");
            return Ok(());
        }
        invoices::mark_paid(txn, outbox, invoice, at).await?;
        Ok(())
    }
}
