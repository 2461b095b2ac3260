//! Invoices: drafted for a period, finalized (numbered, totals frozen, an order to pay them),
//! paid through that order (a checkout, or a charge of the saved payment method), or ended
//! (void, uncollectible). Dunning: a failed charge is retried on the configured schedule, then
//! the end policy applies.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};
use serde::Deserialize;
use shared::api::CheckoutIn;
use shared::billing::InvoiceOut;
use shared::{FieldError, ids};

use super::entities::{invoice_lines, invoices, subscriptions};
use super::model::{BillingError, InvoiceId, InvoiceStatus, SubscriptionStatus};
use super::subscriptions::record_subscription;
use super::{Billing, DunningEnd, store};
use crate::events::{Event, InvoiceChange, Outbox, SubscriptionChange};
use crate::orders;
use crate::orders::model::{OrderId, OrderStatus};
use crate::payments::model::PaymentError;
use crate::platform::db::after;
use crate::platform::numbering;
use crate::platform::pagination::{Page, PageRequest};
use crate::platform::{Actor, Nothing, validate};
use crate::providers::ProviderError;

/// An invoice's order stays payable this long at least; the invoice ends its order (paid,
/// void, uncollectible) well before, as dunning lasts weeks.
const ORDER_WINDOW: std::time::Duration = std::time::Duration::from_secs(400 * 24 * 3600);

pub mod kind {
    pub const RECURRING: &str = "recurring";
    pub const PRORATION_CREDIT: &str = "proration_credit";
    pub const PRORATION_CHARGE: &str = "proration_charge";
}

pub mod reason {
    pub const CREATE: &str = "subscription_create";
    pub const CYCLE: &str = "subscription_cycle";
    pub const UPDATE: &str = "subscription_update";
}

/// A line to bill.
pub struct Line {
    pub kind: &'static str,
    pub description: String,
    pub plan_id: Option<String>,
    pub amount: i64,
    pub period: (DateTime<Utc>, DateTime<Utc>),
}

/// Records an invoice event with the invoice as it now is.
pub async fn record_invoice(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    change: InvoiceChange,
    invoice: &invoices::Model,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let out = store::invoice_with_lines(txn, invoice.clone()).await?;
    outbox.record(txn, Event::Invoice(change, &out), at).await?;
    Ok(())
}

/// Drafts an invoice of `lines` for a subscription's period, to be finalized at `finalize_at`
/// (a finalize job is scheduled), with its `invoice.created`.
pub async fn draft(
    billing: &Billing,
    txn: &DatabaseTransaction,
    sub: &subscriptions::Model,
    (reason, period): (&str, (DateTime<Utc>, DateTime<Utc>)),
    lines: Vec<Line>,
    (at, finalize_at): (DateTime<Utc>, DateTime<Utc>),
) -> Result<invoices::Model, DbErr> {
    let currency = crate::billing::plans::find(txn, &sub.plan_id)
        .await
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .map(|p| p.currency)
        .unwrap_or_default();
    let (invoice, rows) = draft_rows(sub, currency, (reason, period), lines, (at, finalize_at));
    store::insert_invoice(txn, &invoice, &rows).await?;
    let clock = sub.test_clock_id.as_deref();
    store::schedule(
        txn,
        crate::billing::jobs::FINALIZE,
        &invoice.id,
        finalize_at,
        clock,
        at,
    )
    .await?;
    let out = crate::billing::model::invoice_out(invoice.clone(), rows);
    billing
        .core
        .outbox
        .record(txn, Event::Invoice(InvoiceChange::Created, &out), at)
        .await?;
    Ok(invoice)
}

/// A draft invoice of `lines` for a subscription's period, and its lines, as rows to insert.
pub fn draft_rows(
    sub: &subscriptions::Model,
    currency: String,
    (reason, period): (&str, (DateTime<Utc>, DateTime<Utc>)),
    lines: Vec<Line>,
    (at, finalize_at): (DateTime<Utc>, DateTime<Utc>),
) -> (invoices::Model, Vec<invoice_lines::Model>) {
    let invoice = invoices::Model {
        id: ids::new_id(ids::INVOICE),
        number: None,
        subscription_id: Some(sub.id.clone()),
        user_id: sub.user_id.clone(),
        status: InvoiceStatus::Draft,
        currency,
        total: lines.iter().map(|l| l.amount).sum(),
        amount_paid: 0,
        billing_reason: reason.to_owned(),
        period_start: period.0,
        period_end: period.1,
        order_id: None,
        attempt_count: 0,
        next_attempt_at: None,
        last_error: None,
        created_at: at,
        finalize_at,
        finalized_at: None,
        paid_at: None,
        voided_at: None,
        updated_at: at,
    };
    let rows = lines
        .into_iter()
        .enumerate()
        .map(|(position, line)| invoice_lines::Model {
            id: ids::new_id(ids::INVOICE_LINE),
            invoice_id: invoice.id.clone(),
            position: position as i32,
            kind: line.kind.to_owned(),
            description: line.description,
            plan_id: line.plan_id,
            quantity: 1,
            unit_amount: line.amount,
            amount: line.amount,
            period_start: line.period.0,
            period_end: line.period.1,
        })
        .collect();
    (invoice, rows)
}

/// The order that pays a finalized invoice: what the buyer sees on the checkout page (what is
/// billed, for which period), payable for long enough.
pub fn billed_order<'a>(
    invoice: &'a invoices::Model,
    name: &'a str,
    at: DateTime<Utc>,
) -> orders::service::BilledOrder<'a> {
    orders::service::BilledOrder {
        user_id: &invoice.user_id,
        currency: &invoice.currency,
        sku: orders::service::INVOICE_SKU,
        name,
        amount: invoice.total,
        reference: Some(invoice.id.clone()),
        metadata: serde_json::json!({ "invoice_id": invoice.id }),
        expires_at: after(at, ORDER_WINDOW),
    }
}

/// The name of an invoice's order: its first line's description and the period.
pub fn order_name(invoice: &invoices::Model, lines: &[invoice_lines::Model]) -> String {
    let what = lines
        .first()
        .map_or("Subscription", |l| l.description.as_str());
    format!(
        "{what}, {} to {}",
        invoice.period_start.format("%Y-%m-%d"),
        invoice.period_end.format("%Y-%m-%d")
    )
}

/// Finalizes a draft: numbered, totals frozen, `invoice.finalized`. A zero total is paid at
/// once; any other gets the order that pays it, and a charge job when the subscription has a
/// saved payment method. Answers the invoice as it now is; anything but a draft is left as is.
pub async fn finalize(
    billing: &Billing,
    txn: &DatabaseTransaction,
    invoice_id: &str,
    at: DateTime<Utc>,
) -> Result<Option<invoices::Model>, DbErr> {
    let Some(mut invoice) = store::lock_invoice(txn, invoice_id).await? else {
        return Ok(None);
    };
    if invoice.status != InvoiceStatus::Draft {
        return Ok(Some(invoice));
    }
    invoice.status = InvoiceStatus::Open;
    invoice.finalized_at = Some(at);
    invoice.updated_at = at;
    let outbox = &billing.core.outbox;
    let sub = match &invoice.subscription_id {
        Some(id) => store::lock_subscription(txn, id).await?,
        None => None,
    };
    if invoice.total > 0 {
        let name = order_name(&invoice, &store::lines_of(txn, &invoice.id).await?);
        let billed = billed_order(&invoice, &name, at);
        let order = orders::service::create_billed(txn, outbox, billed, at).await?;
        invoice.order_id = Some(order.id);
        if let Some(sub) = sub.as_ref().filter(|s| s.payment_method.is_some()) {
            invoice.next_attempt_at = Some(at);
            let clock = sub.test_clock_id.as_deref();
            let charge = crate::billing::jobs::CHARGE;
            store::schedule(txn, charge, &invoice.id, at, clock, at).await?;
        }
    }
    // The number last: the counter row stays locked from here to the commit, so finalizations
    // on other subscriptions wait for as little as possible.
    invoice.number = invoice_numbers(billing, txn, at, 1).await?.pop();
    store::save_invoice(txn, &invoice).await?;
    record_invoice(txn, outbox, InvoiceChange::Finalized, &invoice, at).await?;
    if invoice.total <= 0 {
        return Ok(Some(mark_paid(txn, outbox, invoice, at).await?));
    }
    Ok(Some(invoice))
}

/// The next `count` invoice numbers of the configured scope, from its counter row (one update):
/// locked from here to the commit, so taken as late in a transaction as can be.
pub async fn invoice_numbers(
    billing: &Billing,
    txn: &DatabaseTransaction,
    at: DateTime<Utc>,
    count: usize,
) -> Result<Vec<String>, DbErr> {
    let config = &billing.config;
    let scope = numbering::number_scope(&config.invoice_prefix, config.number_per_year, at);
    numbering::next_formatted(txn, "invoice_counters", &scope, count).await
}

/// An open invoice is paid (its order was, or its total is zero): `invoice.paid`, and the
/// subscription it was holding back is active again.
pub async fn mark_paid(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    invoice: invoices::Model,
    at: DateTime<Utc>,
) -> Result<invoices::Model, DbErr> {
    let mut paid = mark_all_paid(txn, outbox, vec![invoice], at).await?;
    paid.pop()
        .ok_or_else(|| DbErr::Custom("an invoice's payment answered nothing".to_owned()))
}

/// [`mark_paid`] for many invoices the caller holds the locks of (a bill run's), a few
/// statements for all. Answers them as they now are, in their order.
pub async fn mark_all_paid(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    invoices: Vec<invoices::Model>,
    at: DateTime<Utc>,
) -> Result<Vec<invoices::Model>, DbErr> {
    use crate::events::outbox::CHUNK;
    let mut answers = Vec::with_capacity(invoices.len());
    let mut paid_ids = Vec::new();
    for mut invoice in invoices {
        if invoice.status == InvoiceStatus::Open {
            invoice.status = InvoiceStatus::Paid;
            invoice.amount_paid = invoice.total.max(0);
            invoice.paid_at = Some(at);
            invoice.next_attempt_at = None;
            invoice.updated_at = at;
            paid_ids.push(invoice.id.clone());
        }
        answers.push(invoice);
    }
    for chunk in paid_ids.chunks(CHUNK) {
        invoices::Entity::update_many()
            .col_expr(invoices::Column::Status, InvoiceStatus::Paid.into())
            .col_expr(
                invoices::Column::AmountPaid,
                sea_orm::sea_query::Expr::cust("CASE WHEN total > 0 THEN total ELSE 0 END"),
            )
            .col_expr(invoices::Column::PaidAt, Some(at).into())
            .col_expr(
                invoices::Column::NextAttemptAt,
                Option::<DateTime<Utc>>::None.into(),
            )
            .col_expr(invoices::Column::UpdatedAt, at.into())
            .filter(invoices::Column::Id.is_in(chunk.iter().map(String::as_str)))
            .exec(txn)
            .await?;
    }
    let paid_ids: std::collections::HashSet<String> = paid_ids.into_iter().collect();
    let paid: Vec<&invoices::Model> = answers
        .iter()
        .filter(|i| paid_ids.contains(&i.id))
        .collect();
    let mut lines = store::lines_of_all(txn, paid.iter().map(|i| i.id.as_str())).await?;
    let outs: Vec<InvoiceOut> = paid
        .iter()
        .map(|i| {
            crate::billing::model::invoice_out(
                (*i).clone(),
                lines.remove(&i.id).unwrap_or_default(),
            )
        })
        .collect();
    let events: Vec<Event<'_>> = outs
        .iter()
        .map(|out| Event::Invoice(InvoiceChange::Paid, out))
        .collect();
    outbox.record_all(txn, &events, at).await?;
    // The subscriptions they held back are active again, once nothing else is unpaid.
    let subs = store::lock_subscriptions(
        txn,
        paid.iter().filter_map(|i| i.subscription_id.as_deref()),
    )
    .await?;
    for mut sub in subs.into_values() {
        let waiting = matches!(
            sub.status,
            SubscriptionStatus::Incomplete
                | SubscriptionStatus::PastDue
                | SubscriptionStatus::Unpaid
        );
        if waiting && store::unpaid_invoices(txn, &sub.id).await?.is_empty() {
            sub.status = SubscriptionStatus::Active;
            sub.updated_at = at;
            store::save_subscription(txn, &sub).await?;
            record_subscription(txn, outbox, SubscriptionChange::Updated, &sub, at).await?;
        }
    }
    Ok(answers)
}

/// Ends an open or draft invoice as `void` or `uncollectible`, with its event. Its order is
/// closed by the caller after the commit (a provider may have to be told).
pub async fn end_invoice(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    mut invoice: invoices::Model,
    to: InvoiceStatus,
    at: DateTime<Utc>,
) -> Result<invoices::Model, DbErr> {
    if !matches!(invoice.status, InvoiceStatus::Open | InvoiceStatus::Draft) {
        return Ok(invoice);
    }
    if to == InvoiceStatus::Uncollectible && invoice.status == InvoiceStatus::Draft {
        return Ok(invoice);
    }
    invoice.status = to;
    invoice.next_attempt_at = None;
    invoice.updated_at = at;
    if to == InvoiceStatus::Void {
        invoice.voided_at = Some(at);
    }
    store::save_invoice(txn, &invoice).await?;
    let change = if to == InvoiceStatus::Void {
        InvoiceChange::Voided
    } else {
        InvoiceChange::MarkedUncollectible
    };
    record_invoice(txn, outbox, change, &invoice, at).await?;
    Ok(invoice)
}

/// Closes the order of one ended invoice.
pub async fn close_orders_of(
    billing: &Billing,
    invoice: &invoices::Model,
) -> Result<(), BillingError> {
    let core = &billing.core;
    let Some(order_id) = invoice.order_id.as_deref() else {
        return Ok(());
    };
    let Some(order) = orders::entities::orders::Entity::find_by_id(order_id)
        .one(&core.db)
        .await?
    else {
        return Ok(());
    };
    if !order.status.is_open() {
        return Ok(());
    }
    let transition = orders::store::Transition {
        reason: Some("its invoice ended unpaid"),
        ..orders::store::Transition::system(OrderStatus::Canceled)
    };
    let closed = orders::service::close_order(core, &billing.payments, &order, transition).await;
    if let Err(e) = closed {
        let why = match e {
            orders::service::CloseError::Order(e) => e.to_string(),
            orders::service::CloseError::Checkouts(e) => e.to_string(),
        };
        return Err(BillingError::Fault(crate::platform::Fault::Internal(
            anyhow::anyhow!("closing order {order_id}: {why}"),
        )));
    }
    Ok(())
}

pub mod dunning;
pub mod queries;

pub use dunning::{Charge, charge, charge_now};
pub use queries::{ListInvoicesQuery, end_by_hand, find_visible, get_invoice, list_invoices};
