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
            not_open(&invoice);
            return Ok(());
        }
        invoices::mark_paid(txn, outbox, invoice, at).await?;
        Ok(())
    }

    /// Invoices' orders paid together (a bill run's charges) pay their invoices together; those
    /// of subscriptions on a test clock (paid at the clock's time) as alone.
    async fn react_all(
        &self,
        txn: &DatabaseTransaction,
        events: &[Recorded<'_>],
        outbox: &Outbox,
    ) -> Result<(), DbErr> {
        let paid: Vec<&Recorded<'_>> = events
            .iter()
            .filter(|e| matches!(e.event, Event::OrderPaid(_)))
            .collect();
        let [first, ..] = paid.as_slice() else {
            return Ok(());
        };
        if paid.len() == 1 {
            return self.react(txn, first, outbox).await;
        }
        let order_ids = paid.iter().filter_map(|e| match e.event {
            Event::OrderPaid(order) => Some(order.id.as_str()),
            _ => None,
        });
        let invoices = store::lock_invoices_of_orders(txn, order_ids).await?;
        let subs = store::lock_subscriptions(
            txn,
            invoices.iter().filter_map(|i| i.subscription_id.as_deref()),
        )
        .await?;
        let on_clock = |invoice: &super::entities::invoices::Model| {
            invoice
                .subscription_id
                .as_ref()
                .and_then(|id| subs.get(id))
                .is_some_and(|s| s.test_clock_id.is_some())
        };
        let mut together = Vec::new();
        for invoice in invoices {
            if on_clock(&invoice) {
                let order = invoice.order_id.as_deref();
                let alone = paid.iter().find(
                    |e| matches!(e.event, Event::OrderPaid(o) if Some(o.id.as_str()) == order),
                );
                if let Some(alone) = alone {
                    self.react(txn, alone, outbox).await?;
                }
            } else if invoice.status != super::model::InvoiceStatus::Open {
                not_open(&invoice);
            } else {
                together.push(invoice);
            }
        }
        invoices::mark_all_paid(txn, outbox, together, first.at).await?;
        Ok(())
    }
}

fn not_open(invoice: &super::entities::invoices::Model) {
    tracing::warn!(invoice_id = %invoice.id, order_id = ?invoice.order_id, status = %invoice.status,
        "an invoice's order was paid while the invoice is not open; it needs a refund");
}
