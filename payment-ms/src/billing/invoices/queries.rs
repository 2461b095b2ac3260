//! Reading invoices, and ending one by hand.

use super::*;

/// The invoice, if the actor may see it (its owner, or a service or admin).
pub async fn find_visible<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    id: &str,
) -> Result<invoices::Model, BillingError> {
    let not_found = || BillingError::NotFound(format!("invoice {id}"));
    let id = InvoiceId::parse(id).ok_or_else(not_found)?;
    let invoice = invoices::Entity::find_by_id(id.as_str())
        .one(db)
        .await?
        .ok_or_else(not_found)?;
    if invoice.user_id != actor.user_id && !actor.is_trusted() {
        return Err(not_found());
    }
    Ok(invoice)
}

pub async fn get_invoice(
    billing: &Billing,
    actor: &Actor,
    id: &str,
) -> Result<InvoiceOut, BillingError> {
    let invoice = find_visible(&billing.core.db, actor, id).await?;
    Ok(store::invoice_with_lines(&billing.core.db, invoice).await?)
}

#[derive(Debug, Deserialize)]
pub struct ListInvoicesQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub subscription_id: Option<String>,
    pub status: Option<String>,
    /// Service/admin only: one user's invoices. Others always see their own.
    pub user_id: Option<String>,
}

pub async fn list_invoices(
    billing: &Billing,
    actor: &Actor,
    query: ListInvoicesQuery,
) -> Result<Page<InvoiceOut>, BillingError> {
    let mut errors = Vec::new();
    validate::query_text(&mut errors, "user_id", query.user_id.as_deref());
    validate::query_id(
        &mut errors,
        "subscription_id",
        ids::SUBSCRIPTION,
        query.subscription_id.as_deref(),
    );
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => {
            let parsed = InvoiceStatus::parse(s);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "status",
                    shared::problem::one_of(shared::billing::INVOICE_STATUSES),
                ));
            }
            parsed
        }
    };
    validate::finish(errors).map_err(BillingError::Invalid)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref(), ids::INVOICE)
        .map_err(BillingError::Invalid)?;
    let mut select = invoices::Entity::find();
    select = match query.user_id.as_deref().filter(|_| actor.is_trusted()) {
        Some(user) => select.filter(invoices::Column::UserId.eq(user)),
        None if actor.is_trusted() => select,
        None => select.filter(invoices::Column::UserId.eq(actor.user_id.as_str())),
    };
    if let Some(sub) = &query.subscription_id {
        select = select.filter(invoices::Column::SubscriptionId.eq(sub.as_str()));
    }
    if let Some(status) = status {
        select = select.filter(invoices::Column::Status.eq(status));
    }
    let db = &billing.core.db;
    let rows = page.fetch(select, invoices::Column::Id, db).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(store::invoice_with_lines(db, row).await?);
    }
    Ok(page.page(out, |i| &i.id, |i| i))
}

/// An admin or service ends an open invoice: `void` (a mistake) or `uncollectible` (given up
/// on). Its order is closed; a paid invoice is corrected by a refund, never voided.
pub async fn end_by_hand(
    billing: &Billing,
    actor: &Actor,
    id: &str,
    to: InvoiceStatus,
) -> Result<InvoiceOut, BillingError> {
    if !actor.is_trusted() {
        return Err(BillingError::Forbidden(
            "Ending an invoice needs the service or admin role".to_owned(),
        ));
    }
    let core = &billing.core;
    let found = find_visible(&core.db, actor, id).await?;
    let txn = core.begin().await?;
    let invoice = store::lock_invoice(&txn, &found.id)
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("invoice {id}")))?;
    let allowed = match to {
        InvoiceStatus::Void => matches!(invoice.status, InvoiceStatus::Open | InvoiceStatus::Draft),
        _ => invoice.status == InvoiceStatus::Open,
    };
    if !allowed {
        return Err(BillingError::Conflict(
            "invoice_not_open",
            format!(
                "The invoice is {}; only an open invoice (or a draft, to void it) can become {to}",
                invoice.status
            ),
        ));
    }
    let at =
        crate::billing::clocks::now_of_subscription(&txn, core, invoice.subscription_id.as_deref())
            .await?;
    let ended = end_invoice(&txn, &core.outbox, invoice, to, at).await?;
    core.commit(txn).await?;
    close_orders_of(billing, &ended).await?;
    Ok(store::invoice_with_lines(&core.db, ended).await?)
}
