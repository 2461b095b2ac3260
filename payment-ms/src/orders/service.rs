//! Orders: created by a trusted backend (role `service` or `admin`) for a user, with items whose
//! totals are computed here in integer minor units; paid by their owner through a checkout.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use serde::Deserialize;
use shared::money::{self, Currency, MAX_AMOUNT};
use shared::{FieldError, Problem, ids};

pub use shared::api::{CreateOrderIn, OrderItemIn, OrderItemOut, OrderOut};

use crate::AppState;
use crate::events::outbox::{self, EventType};
use crate::payments::service as payment_domain;
use crate::platform::db::{after, begin_write, now};
use crate::platform::http::caller::Caller;
use crate::platform::http::error::Result;
use crate::platform::http::idempotency::Claim;
use crate::platform::pagination::{Page, PageRequest};
use crate::platform::validate;
use crate::providers::CloseReason;
use crate::{orders::entities::order_items, orders::entities::orders};

pub const MAX_ITEMS: usize = 100;
pub const MAX_QUANTITY: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    Pending,
    Paid,
    Canceled,
    Expired,
    Refunded,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Canceled => "canceled",
            OrderStatus::Expired => "expired",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub const ALL: [OrderStatus; 5] = [
        Self::Pending,
        Self::Paid,
        Self::Canceled,
        Self::Expired,
        Self::Refunded,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// The public view of an order and its lines.
pub fn order_out(order: orders::Model, items: Vec<order_items::Model>) -> OrderOut {
    {
        OrderOut {
            id: order.id,
            user_id: order.user_id,
            status: order.status,
            amount: order.total_amount,
            currency: order.currency,
            reference: order.reference,
            metadata: order.metadata,
            items: items
                .into_iter()
                .map(|i| OrderItemOut {
                    sku: i.sku,
                    name: i.name,
                    quantity: i.quantity,
                    unit_price: i.unit_price,
                    line_total: i.line_total,
                })
                .collect(),
            created_at: order.created_at,
            updated_at: order.updated_at,
            expires_at: order.expires_at,
        }
    }
}

/// Validates the order and computes its lines and total. Every error names its field.
fn validate(input: &CreateOrderIn) -> Result<(Currency, Vec<i64>, i64), Problem> {
    let mut errors = Vec::new();
    validate::text(&mut errors, "user_id", &input.user_id, 255);
    let currency = Currency::accept(&input.currency)
        .map_err(|refusal| errors.push(FieldError::new("currency", refusal)))
        .ok();
    if input.items.is_empty() {
        errors.push(FieldError::new("items", "must have at least one item"));
    } else if input.items.len() > MAX_ITEMS {
        errors.push(FieldError::new(
            "items",
            format!("must have at most {MAX_ITEMS} items"),
        ));
    }
    let mut line_totals = Vec::with_capacity(input.items.len());
    for (i, item) in input.items.iter().enumerate() {
        validate::text(&mut errors, &format!("items[{i}].sku"), &item.sku, 255);
        validate::text(&mut errors, &format!("items[{i}].name"), &item.name, 255);
        let mut line_ok = true;
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            errors.push(FieldError::new(
                format!("items[{i}].quantity"),
                format!("must be between 1 and {MAX_QUANTITY}"),
            ));
            line_ok = false;
        }
        if !(0..=MAX_AMOUNT).contains(&item.unit_price) {
            errors.push(FieldError::new(
                format!("items[{i}].unit_price"),
                format!("must be between 0 and {MAX_AMOUNT} minor units"),
            ));
            line_ok = false;
        }
        if line_ok {
            match money::line_total(item.quantity, item.unit_price) {
                Some(total) => line_totals.push(total),
                None => errors.push(FieldError::new(
                    format!("items[{i}]"),
                    format!("quantity × unit_price exceeds {MAX_AMOUNT} minor units"),
                )),
            }
        }
    }
    if let Some(reference) = &input.reference {
        validate::text(&mut errors, "reference", reference, 255);
    }
    validate::metadata(&mut errors, &input.metadata);
    let total = if errors.is_empty() {
        match money::sum(line_totals.iter().copied()) {
            Some(0) => {
                errors.push(FieldError::new(
                    "items",
                    "the order total must be greater than 0",
                ));
                0
            }
            Some(total) => total,
            None => {
                errors.push(FieldError::new(
                    "items",
                    format!("the order total exceeds {MAX_AMOUNT} minor units"),
                ));
                0
            }
        }
    } else {
        0
    };
    match (errors.is_empty(), currency) {
        (true, Some(currency)) => Ok((currency, line_totals, total)),
        _ => Err(Problem::validation(errors)),
    }
}

#[tracing::instrument(skip_all, fields(user_id = %input.user_id))]
pub async fn create_order(
    state: &AppState,
    caller: &Caller,
    input: CreateOrderIn,
    claim: Option<Claim>,
) -> Result<OrderOut> {
    if !caller.is_trusted() {
        return Err(Problem::forbidden("Creating an order needs the service or admin role").into());
    }
    let (currency, line_totals, total) = validate(&input)?;
    let at = now();
    let order = orders::Model {
        id: ids::new_id(ids::ORDER),
        user_id: input.user_id.trim().to_owned(),
        status: OrderStatus::Pending.as_str().to_owned(),
        currency: currency.code(),
        total_amount: total,
        reference: input.reference,
        metadata: input.metadata.unwrap_or_else(|| serde_json::json!({})),
        created_at: at,
        updated_at: at,
        expires_at: after(at, state.config.order_ttl),
    };
    let items: Vec<order_items::Model> = input
        .items
        .into_iter()
        .zip(line_totals)
        .enumerate()
        .map(|(position, (item, line_total))| order_items::Model {
            id: ids::new_id(ids::ORDER_ITEM),
            order_id: order.id.clone(),
            position: position as i32,
            sku: item.sku,
            name: item.name,
            quantity: item.quantity,
            unit_price: item.unit_price,
            line_total,
        })
        .collect();

    let txn = begin_write(&state.db).await?;
    orders::ActiveModel::from(order.clone())
        .insert(&txn)
        .await?;
    order_items::Entity::insert_many(items.iter().cloned().map(order_items::ActiveModel::from))
        .exec(&txn)
        .await?;
    let out = order_out(order, items);
    outbox::record(&txn, EventType::OrderCreated, &out.id, &out, at).await?;
    if let Some(claim) = claim {
        claim
            .complete(&txn, axum::http::StatusCode::CREATED, &out)
            .await?;
    }
    state.commit(txn).await?;
    Ok(out)
}

pub async fn load_items<C: ConnectionTrait>(
    db: &C,
    order_id: &str,
) -> Result<Vec<order_items::Model>> {
    Ok(order_items::Entity::find()
        .filter(order_items::Column::OrderId.eq(order_id))
        .order_by_asc(order_items::Column::Position)
        .all(db)
        .await?)
}

pub async fn load_out<C: ConnectionTrait>(db: &C, order: orders::Model) -> Result<OrderOut> {
    let items = load_items(db, &order.id).await?;
    Ok(order_out(order, items))
}

/// The order if this caller may see it: its owner, or a service/admin. Anyone else is told it
/// does not exist.
pub async fn find_visible(
    db: &DatabaseConnection,
    caller: &Caller,
    order_id: &str,
) -> Result<orders::Model> {
    let not_found = || Problem::not_found(format!("order {order_id}"));
    if !ids::is_valid(ids::ORDER, order_id) {
        return Err(not_found().into());
    }
    let order = orders::Entity::find_by_id(order_id)
        .one(db)
        .await?
        .ok_or_else(not_found)?;
    if order.user_id != caller.user_id && !caller.is_trusted() {
        return Err(not_found().into());
    }
    Ok(order)
}

pub async fn get_order(
    db: &DatabaseConnection,
    caller: &Caller,
    order_id: &str,
) -> Result<OrderOut> {
    let order = find_visible(db, caller, order_id).await?;
    load_out(db, order).await
}

#[derive(Debug, Deserialize)]
pub struct ListOrdersQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    /// Service/admin only: the orders of one user. Others always see their own.
    pub user_id: Option<String>,
    pub status: Option<String>,
}

pub async fn list_orders(
    db: &DatabaseConnection,
    caller: &Caller,
    query: ListOrdersQuery,
) -> Result<Page<OrderOut>> {
    let mut errors = Vec::new();
    validate::query_text(&mut errors, "user_id", query.user_id.as_deref());
    validate::finish(errors)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref(), ids::ORDER)?;
    let mut select = orders::Entity::find();
    if caller.is_trusted() {
        if let Some(user_id) = &query.user_id {
            select = select.filter(orders::Column::UserId.eq(user_id));
        }
    } else {
        select = select.filter(orders::Column::UserId.eq(&caller.user_id));
    }
    if let Some(status) = &query.status {
        let status = OrderStatus::parse(status).ok_or_else(|| {
            Problem::validation(vec![FieldError::new(
                "status",
                shared::problem::one_of(OrderStatus::ALL.map(OrderStatus::as_str)),
            )])
        })?;
        select = select.filter(orders::Column::Status.eq(status.as_str()));
    }
    let rows = page.fetch(select, orders::Column::Id, db).await?;
    let ids: Vec<String> = rows.iter().map(|o| o.id.clone()).collect();
    let mut items_by_order: HashMap<String, Vec<order_items::Model>> = HashMap::new();
    if !ids.is_empty() {
        for item in order_items::Entity::find()
            .filter(order_items::Column::OrderId.is_in(ids))
            .order_by_asc(order_items::Column::Position)
            .all(db)
            .await?
        {
            items_by_order
                .entry(item.order_id.clone())
                .or_default()
                .push(item);
        }
    }
    Ok(page.page(
        rows,
        |o| &o.id,
        |o| {
            let items = items_by_order.remove(&o.id).unwrap_or_default();
            order_out(o, items)
        },
    ))
}

/// Ends a pending order: `canceled` by a person, `expired` by the sweep. Its open checkouts are
/// closed first; if one of them turns out paid, the order is paid and stays so. Answers the
/// order as it now is, and whether this call moved it.
pub async fn close_order(
    state: &AppState,
    order: &orders::Model,
    to: OrderStatus,
) -> Result<(orders::Model, bool)> {
    let reason = match to {
        OrderStatus::Expired => CloseReason::Expired,
        _ => CloseReason::Canceled,
    };
    let pending = payment_domain::pending_of_order(&state.db, &order.id).await?;
    for payment in &pending {
        payment_domain::close_payment(state, payment, reason).await?;
    }
    let event = match to {
        OrderStatus::Expired => EventType::OrderExpired,
        _ => EventType::OrderCanceled,
    };
    let txn = begin_write(&state.db).await?;
    let moved = move_order(&txn, &order.id, OrderStatus::Pending, to, event, now()).await?;
    state.commit(txn).await?;
    Ok(moved)
}

/// Moves an order from `from` to `to` inside the caller's transaction and, when it moved,
/// records `event` with the order as it now is. Answers the order and whether it moved (it
/// does not when someone else moved it first, or it was never in `from`).
pub(crate) async fn move_order<C: ConnectionTrait>(
    txn: &C,
    order_id: &str,
    from: OrderStatus,
    to: OrderStatus,
    event: EventType,
    at: DateTime<Utc>,
) -> Result<(orders::Model, bool)> {
    let res = orders::Entity::update_many()
        .col_expr(orders::Column::Status, to.as_str().into())
        .col_expr(orders::Column::UpdatedAt, at.into())
        .filter(orders::Column::Id.eq(order_id))
        .filter(orders::Column::Status.eq(from.as_str()))
        .exec(txn)
        .await?;
    let current = orders::Entity::find_by_id(order_id)
        .one(txn)
        .await?
        .ok_or_else(|| Problem::not_found(format!("order {order_id}")))?;
    let moved = res.rows_affected == 1;
    if moved {
        let out = load_out(txn, current.clone()).await?;
        outbox::record(txn, event, &out.id, &out, at).await?;
    }
    Ok((current, moved))
}

pub async fn cancel_order(state: &AppState, caller: &Caller, order_id: &str) -> Result<OrderOut> {
    let order = find_visible(&state.db, caller, order_id).await?;
    if order.status != OrderStatus::Pending.as_str() {
        return Err(Problem::conflict(
            "order_not_cancelable",
            format!(
                "The order is {}; only a pending order can be canceled",
                order.status
            ),
        )
        .into());
    }
    let (current, _) = close_order(state, &order, OrderStatus::Canceled).await?;
    if current.status != OrderStatus::Canceled.as_str() {
        return Err(Problem::conflict(
            "order_not_cancelable",
            format!(
                "The order became {} before it could be canceled",
                current.status
            ),
        )
        .into());
    }
    load_out(&state.db, current).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(quantity: i64, unit_price: i64) -> OrderItemIn {
        OrderItemIn {
            sku: "sku".into(),
            name: "Thing".into(),
            quantity,
            unit_price,
        }
    }

    fn order(items: Vec<OrderItemIn>) -> CreateOrderIn {
        CreateOrderIn {
            user_id: "u1".into(),
            items,
            currency: "usd".into(),
            reference: None,
            metadata: None,
        }
    }

    #[test]
    fn the_statuses_are_the_documented_ones() {
        assert_eq!(
            OrderStatus::ALL.map(OrderStatus::as_str),
            shared::api::ORDER_STATUSES
        );
    }

    #[test]
    fn totals_are_sums_of_integer_lines() {
        let (_, lines, total) = validate(&order(vec![item(3, 1999), item(1, 1)])).unwrap();
        assert_eq!(lines, vec![5997, 1]);
        assert_eq!(total, 5998);
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut input = order(vec![item(0, 10), item(2, -1)]);
        input.currency = "zzz".into();
        let problem = validate(&input).unwrap_err();
        let fields: Vec<_> = problem.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["currency", "items[0].quantity", "items[1].unit_price"]
        );
    }

    #[test]
    fn overflowing_totals_are_refused() {
        let problem = validate(&order(vec![item(MAX_QUANTITY, MAX_AMOUNT)])).unwrap_err();
        assert_eq!(problem.errors[0].field, "items[0]");
        let problem = validate(&order(vec![item(1, MAX_AMOUNT), item(1, MAX_AMOUNT)])).unwrap_err();
        assert_eq!(problem.errors[0].field, "items");
        let problem = validate(&order(vec![item(5, 0)])).unwrap_err();
        assert_eq!(
            problem.errors[0].message,
            "the order total must be greater than 0"
        );
    }
}
