//! Order use cases: create, read, list, cancel and expire, and what a checkout needs of an
//! order. Free of HTTP: each takes what it works on and who asks, and answers an order or an
//! [`OrderError`].

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use shared::api::{CreateOrderIn, OrderOut};
use shared::{FieldError, ids};

use super::entities::{order_items, orders};
use super::lifecycle::actor_label;
use super::model::{OrderError, OrderId, OrderStatus, address_json, order_out, validate};
use super::store::{self, Transition};
use crate::accounts::{Accounts, AccountsError, Existence};
use crate::events::Event;
use crate::platform::db::after;
use crate::platform::pagination::{Page, PageRequest};
use crate::platform::{Actor, BeforeCommit, Core, validate as check};

/// Closes the open checkouts of an order before it ends, so that no buyer can pay it after.
/// Payments implement it; the order knows no provider.
#[async_trait]
pub trait Checkouts: Send + Sync {
    type Error: Send;

    /// Closes the order's open checkouts. One that turns out paid makes the order paid (through
    /// the payment's events), which the order then finds.
    async fn close_open(&self, order_id: &str, expired: bool) -> Result<(), Self::Error>;
}

/// An order use case that closes checkouts failed: on the order's side or on theirs.
#[derive(Debug)]
pub enum CloseError<E> {
    Order(OrderError),
    Checkouts(E),
}

impl<E> From<OrderError> for CloseError<E> {
    fn from(e: OrderError) -> Self {
        CloseError::Order(e)
    }
}

impl<E> From<sea_orm::DbErr> for CloseError<E> {
    fn from(e: sea_orm::DbErr) -> Self {
        CloseError::Order(e.into())
    }
}

#[tracing::instrument(skip_all, fields(user_id = ?input.user_id))]
pub async fn create_order(
    core: &Core,
    accounts: &dyn Accounts,
    ttl: Duration,
    actor: &Actor,
    mut input: CreateOrderIn,
    then: &dyn BeforeCommit<OrderOut>,
) -> Result<OrderOut, OrderError> {
    super::pricing::own_and_price(&core.db, actor, &mut input).await?;
    let (currency, names, totals) = validate(&mut input).map_err(OrderError::Invalid)?;
    let user_id = input
        .user_id
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let no_such = |why: &str| OrderError::Invalid(vec![FieldError::new("user_id", why)]);
    match accounts.existence(&user_id).await {
        Ok(Existence::Exists) => {}
        Ok(Existence::Unknown) => return Err(no_such("no such user")),
        Ok(Existence::Deleted) => return Err(no_such("this user was deleted")),
        Err(AccountsError::Unavailable(why)) => return Err(OrderError::Unavailable(why)),
        Err(AccountsError::Db(e)) => return Err(e.into()),
    }
    let at = core.now();
    let order = orders::Model {
        id: ids::new_id(ids::ORDER),
        user_id,
        status: OrderStatus::Pending,
        currency: currency.code(),
        total_amount: totals.total,
        reference: input.reference,
        metadata: input.metadata.unwrap_or_else(|| serde_json::json!({})),
        created_at: at,
        updated_at: at,
        expires_at: after(at, ttl),
        number: None,
        subtotal_amount: totals.subtotal,
        discount_amount: totals.discount,
        shipping_amount: totals.shipping,
        tax_amount: totals.tax,
        shipping_address: address_json(input.shipping_address.as_ref()),
        billing_address: address_json(input.billing_address.as_ref()),
        carrier: None,
        tracking_number: None,
        status_reason: None,
        revision: 0,
    };
    let items: Vec<order_items::Model> = input
        .items
        .into_iter()
        .zip(names)
        .zip(totals.lines)
        .enumerate()
        .map(|(position, ((item, name), line))| order_items::Model {
            id: ids::new_id(ids::ORDER_ITEM),
            order_id: order.id.clone(),
            position: position as i32,
            sku: item.sku,
            name,
            quantity: item.quantity,
            unit_price: item.unit_price.unwrap_or_default(),
            line_total: line.gross,
            discount_amount: line.discount,
            tax_rate_bps: item.tax_rate_bps.unwrap_or(0) as i32,
            tax_amount: line.tax,
        })
        .collect();

    let txn = core.begin().await?;
    let mut order = order;
    order.number = store::next_order_numbers(&txn, at, 1).await?.pop();
    store::insert(&txn, &order, &items, &actor_label(Some(actor))).await?;
    let out = order_out(order, items);
    core.outbox
        .record(&txn, Event::OrderCreated(&out), at)
        .await?;
    then.before_commit(&txn, &out).await?;
    core.commit(txn).await?;
    Ok(out)
}

/// The order, if the actor may see it (its owner, or a service or admin).
pub async fn find_visible(
    core: &Core,
    actor: &Actor,
    order_id: &OrderId,
) -> Result<orders::Model, OrderError> {
    store::find_visible(&core.db, actor, order_id.as_str())
        .await?
        .ok_or_else(|| OrderError::NotFound(order_id.to_string()))
}

pub async fn get_order(
    core: &Core,
    actor: &Actor,
    order_id: &OrderId,
) -> Result<OrderOut, OrderError> {
    let order = find_visible(core, actor, order_id).await?;
    Ok(store::load_out(&core.db, order).await?)
}

#[derive(Debug, Deserialize)]
pub struct ListOrdersQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    /// Service/admin only: the orders of one user. Others always see their own.
    pub user_id: Option<String>,
    pub status: Option<String>,
    /// Created at or after.
    pub created_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Created before.
    pub created_to: Option<chrono::DateTime<chrono::Utc>>,
    /// `-created_at` (the default: newest first), `created_at`, `-amount` or `amount`.
    pub sort: Option<String>,
}

pub async fn list_orders(
    core: &Core,
    actor: &Actor,
    query: ListOrdersQuery,
) -> Result<Page<OrderOut>, OrderError> {
    let mut errors = Vec::new();
    check::query_text(&mut errors, "user_id", query.user_id.as_deref());
    let status = query.status.as_deref().and_then(|status| {
        let parsed = OrderStatus::parse(status);
        if parsed.is_none() {
            errors.push(FieldError::new(
                "status",
                shared::problem::one_of(OrderStatus::ALL.map(OrderStatus::as_str)),
            ));
        }
        parsed
    });
    let sort = match query.sort.as_deref() {
        None => Some(store::OrderSort::NEWEST),
        Some(sort) => store::OrderSort::parse(sort),
    };
    if sort.is_none() {
        errors.push(FieldError::new(
            "sort",
            shared::problem::one_of(store::OrderSort::NAMES),
        ));
    }
    if let (Some(from), Some(to)) = (query.created_from, query.created_to)
        && from >= to
    {
        errors.push(FieldError::new("created_to", "must be after created_from"));
    }
    // By amount, a cursor is `<amount>.<id>`; its id is read as every list reads its cursor.
    let (amount, cursor) = match (sort, query.cursor.as_deref()) {
        (Some(sort), Some(cursor)) if sort.by_amount => {
            let parsed = cursor
                .split_once('.')
                .and_then(|(amount, id)| Some((amount.parse::<i64>().ok()?, id)));
            match parsed {
                Some((amount, id)) => (Some(amount), Some(id)),
                None => {
                    errors.push(FieldError::new("cursor", "is not a cursor from this list"));
                    (None, None)
                }
            }
        }
        (_, cursor) => (None, cursor),
    };
    let page = PageRequest::parse(query.limit, cursor, ids::ORDER)
        .map_err(|e| errors.extend(e))
        .ok();
    let (Some(sort), Some(page), true) = (sort, page, errors.is_empty()) else {
        return Err(OrderError::Invalid(errors));
    };
    let after = page
        .before
        .clone()
        .map(|id| store::OrderCursor { amount, id });
    let limit = page.limit;
    let filter = store::OrderFilter {
        user_id: query.user_id.as_deref().filter(|_| actor.is_trusted()),
        status,
        created_from: query.created_from,
        created_to: query.created_to,
    };
    let mut rows = store::list(&core.db, actor, &filter, sort, after.as_ref(), limit).await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|o| sort.cursor_of(o)))
        .flatten();
    Ok(Page {
        data: rows,
        next_cursor,
    })
}

/// Ends an order not paid yet: `canceled` by a person (`transition` says who and why),
/// `expired` by the sweep. Its open checkouts are closed first; if one of them turns out paid,
/// the order is paid and stays so. Answers the order as it now is, and whether this call moved
/// it.
pub async fn close_order<C: Checkouts>(
    core: &Core,
    checkouts: &C,
    order: &orders::Model,
    transition: Transition<'_>,
) -> Result<(orders::Model, bool), CloseError<C::Error>> {
    let expired = transition.to == OrderStatus::Expired;
    checkouts
        .close_open(&order.id, expired)
        .await
        .map_err(CloseError::Checkouts)?;
    let txn = core.begin().await?;
    let moved = store::move_order(&txn, &core.outbox, &order.id, transition, core.now()).await?;
    core.commit(txn).await?;
    Ok(moved)
}

/// Cancels an order not paid yet (its owner, a service or an admin), with an optional reason.
/// A paid order is canceled only through a refund in full.
pub async fn cancel_order<C: Checkouts>(
    core: &Core,
    checkouts: &C,
    actor: &Actor,
    order_id: &OrderId,
    reason: Option<String>,
) -> Result<OrderOut, CloseError<C::Error>> {
    let mut errors = Vec::new();
    if let Some(reason) = &reason {
        check::text(&mut errors, "reason", reason, 500);
    }
    check::finish(errors).map_err(OrderError::Invalid)?;
    let order = find_visible(core, actor, order_id).await?;
    if !order.status.is_open() {
        return Err(OrderError::NotCancelable(format!(
            "The order is {}; only an order not paid yet can be canceled (a paid one through \
             a refund in full)",
            order.status
        ))
        .into());
    }
    let label = actor_label(Some(actor));
    let transition = Transition {
        to: OrderStatus::Canceled,
        by: super::lifecycle::by(actor),
        actor: &label,
        reason: reason.as_deref(),
        shipment: None,
    };
    let (current, _) = close_order(core, checkouts, &order, transition).await?;
    if current.status != OrderStatus::Canceled {
        return Err(OrderError::NotCancelable(format!(
            "The order became {} before it could be canceled",
            current.status
        ))
        .into());
    }
    Ok(store::load_out(&core.db, current).await?)
}

/// Cancels every pending order of a user (whose account is gone), closing their checkouts
/// first. An order paid meanwhile stays paid. Answers how many this call canceled; a second
/// call finds none left.
pub async fn cancel_pending_of_user<C: Checkouts>(
    core: &Core,
    checkouts: &C,
    user_id: &str,
) -> Result<usize, CloseError<C::Error>> {
    let mut canceled = 0;
    let mut seen = std::collections::HashSet::new();
    loop {
        let batch: Vec<orders::Model> = store::pending_of_user(&core.db, user_id, 100)
            .await?
            .into_iter()
            .filter(|o| seen.insert(o.id.clone()))
            .collect();
        if batch.is_empty() {
            return Ok(canceled);
        }
        for order in &batch {
            let transition = Transition {
                reason: Some("the user's account was deleted"),
                ..Transition::system(OrderStatus::Canceled)
            };
            if close_order(core, checkouts, order, transition).await?.1 {
                canceled += 1;
            }
        }
    }
}

/// Expires pending orders past their time, closing their checkouts first. Answers how many
/// this call expired (not those another replica expired meanwhile).
pub async fn expire_due<C: Checkouts>(
    core: &Core,
    checkouts: &C,
    at: chrono::DateTime<chrono::Utc>,
    batch: u64,
) -> Result<usize, OrderError>
where
    C::Error: std::fmt::Display,
{
    let mut expired = 0;
    for order in store::due_to_expire(&core.db, at, batch).await? {
        let transition = Transition::system(OrderStatus::Expired);
        match close_order(core, checkouts, &order, transition).await {
            Ok((_, true)) => expired += 1,
            Ok(_) => {}
            Err(CloseError::Order(e)) => {
                tracing::warn!(error = %e, order_id = %order.id, "could not expire order")
            }
            Err(CloseError::Checkouts(e)) => {
                tracing::warn!(error = %e, order_id = %order.id, "could not expire order")
            }
        }
    }
    Ok(expired)
}

/// What a checkout needs of an order: that its owner asks, and that it can be paid at `at`.
pub fn ensure_payable(
    order: &orders::Model,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), OrderError> {
    if !order.status.is_open() {
        return Err(OrderError::NotPayable(format!(
            "The order is {}; only an order not paid yet can be paid",
            order.status
        )));
    }
    if order.expires_at <= at {
        return Err(OrderError::NotPayable(
            "The order has expired; ask for a new one".to_owned(),
        ));
    }
    Ok(())
}

/// `now` (the order re-read under its lock) can still be paid by a checkout that priced it as
/// `before`: payable, and not edited since.
pub fn still_payable(
    before: &orders::Model,
    now: &orders::Model,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), OrderError> {
    ensure_payable(now, at)?;
    if now.revision != before.revision {
        return Err(OrderError::NotPayable(
            "The order changed while its checkout was starting; start it again".to_owned(),
        ));
    }
    Ok(())
}

/// The SKU of the one line of an order that pays an invoice: no stock is held for it.
pub const INVOICE_SKU: &str = "invoice";

/// What another context bills through an order (an invoice): one line, its owner and when the
/// order may expire at the earliest.
pub struct BilledOrder<'a> {
    pub user_id: &'a str,
    pub currency: &'a str,
    pub sku: &'a str,
    pub name: &'a str,
    pub amount: i64,
    pub reference: Option<String>,
    pub metadata: serde_json::Value,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Creates the order that pays something billed, in the caller's transaction (with its
/// `order.created`): its checkout, payment and refunds then work as for any order.
pub async fn create_billed(
    txn: &sea_orm::DatabaseTransaction,
    outbox: &crate::events::Outbox,
    billed: BilledOrder<'_>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<OrderOut, sea_orm::DbErr> {
    let mut made = create_all_billed(txn, outbox, vec![billed], at).await?;
    made.pop()
        .ok_or_else(|| sea_orm::DbErr::Custom("a billed order was not created".to_owned()))
}

/// [`create_billed`] for many (a bill run's): their numbers taken with one update, the rows
/// and events written with a few statements for all. Answers them in the order given.
pub async fn create_all_billed(
    txn: &sea_orm::DatabaseTransaction,
    outbox: &crate::events::Outbox,
    billed: Vec<BilledOrder<'_>>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<OrderOut>, sea_orm::DbErr> {
    let numbers = store::next_order_numbers(txn, at, billed.len()).await?;
    let mut orders = Vec::with_capacity(billed.len());
    let mut items = Vec::with_capacity(billed.len());
    for (billed, number) in billed.into_iter().zip(numbers) {
        let order = orders::Model {
            id: ids::new_id(ids::ORDER),
            user_id: billed.user_id.to_owned(),
            status: OrderStatus::Pending,
            currency: billed.currency.to_owned(),
            total_amount: billed.amount,
            reference: billed.reference,
            metadata: billed.metadata,
            created_at: at,
            updated_at: at,
            expires_at: billed.expires_at,
            number: Some(number),
            subtotal_amount: billed.amount,
            discount_amount: 0,
            shipping_amount: 0,
            tax_amount: 0,
            shipping_address: None,
            billing_address: None,
            carrier: None,
            tracking_number: None,
            status_reason: None,
            revision: 0,
        };
        items.push(order_items::Model {
            id: ids::new_id(ids::ORDER_ITEM),
            order_id: order.id.clone(),
            position: 0,
            sku: billed.sku.to_owned(),
            name: billed.name.to_owned(),
            quantity: 1,
            unit_price: billed.amount,
            line_total: billed.amount,
            discount_amount: 0,
            tax_rate_bps: 0,
            tax_amount: 0,
        });
        orders.push(order);
    }
    store::insert_all(txn, &orders, &items, "system").await?;
    let made: Vec<OrderOut> = orders
        .into_iter()
        .zip(items)
        .map(|(order, item)| order_out(order, vec![item]))
        .collect();
    let events: Vec<Event<'_>> = made.iter().map(Event::OrderCreated).collect();
    outbox.record_all(txn, &events, at).await?;
    Ok(made)
}
