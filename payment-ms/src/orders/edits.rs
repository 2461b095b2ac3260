//! Edits of a pending order, by its owner or staff: add a line, change a line's quantity,
//! remove a line, change the addresses (and, staff only, the discount and shipping). Each edit
//! runs under the order's row lock, computes the totals again with the one totals function,
//! bumps the order's revision (a checkout priced on an earlier one does not open) and records
//! `order.updated`, all in one transaction.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
use shared::api::{OrderItemIn, OrderOut};
use shared::money::Currency;
use shared::orders::{UpdateOrderIn, UpdateOrderItemIn};
use shared::{FieldError, ids};

use super::entities::{order_items, orders};
use super::model::{
    MAX_ITEMS, MAX_QUANTITY, OrderError, OrderId, OrderStatus, address_json, check_address,
    check_line, order_out, totals_of,
};
use super::service::find_visible;
use super::store;
use super::totals::LineIn;
use crate::events::{Event, OrderChange};
use crate::platform::{Actor, BeforeCommit, Core, Fault, Nothing, validate};

/// A pending order and its lines, as an edit changes them.
pub struct Draft {
    pub order: orders::Model,
    pub items: Vec<order_items::Model>,
}

/// Changes a pending order's addresses, discount or shipping.
pub async fn update_order(
    core: &Core,
    actor: &Actor,
    order_id: &OrderId,
    mut input: UpdateOrderIn,
) -> Result<OrderOut, OrderError> {
    if !actor.is_trusted() && (input.discount.is_some() || input.shipping.is_some()) {
        return Err(OrderError::Forbidden(
            "Setting a discount or shipping needs the service or admin role".to_owned(),
        ));
    }
    let mut errors = Vec::new();
    for (field, address) in [
        ("shipping_address", &mut input.shipping_address),
        ("billing_address", &mut input.billing_address),
    ] {
        if let Some(address) = address {
            check_address(&mut errors, field, address);
        }
    }
    validate::finish(errors).map_err(OrderError::Invalid)?;
    edit(core, actor, order_id, &Nothing, |draft| {
        let order = &mut draft.order;
        if let Some(address) = &input.shipping_address {
            order.shipping_address = address_json(Some(address));
        }
        if let Some(address) = &input.billing_address {
            order.billing_address = address_json(Some(address));
        }
        if let Some(discount) = input.discount {
            order.discount_amount = discount;
        }
        if let Some(shipping) = input.shipping {
            order.shipping_amount = shipping;
        }
        Ok(())
    })
    .await
}

/// Adds a line to a pending order: a buyer's from the catalogue (SKU and quantity), staff's
/// explicit or from the catalogue. A line of the same SKU at the same price and rate takes the
/// quantity instead.
pub async fn add_item(
    core: &Core,
    actor: &Actor,
    order_id: &OrderId,
    mut item: OrderItemIn,
    then: &dyn BeforeCommit<OrderOut>,
) -> Result<OrderOut, OrderError> {
    let order = find_visible(core, actor, order_id).await?;
    let currency = Currency::accept(&order.currency)
        .map_err(|e| Fault::Internal(anyhow::anyhow!("order {} has currency {e}", order.id)))?;
    super::pricing::price_items(
        &core.db,
        actor,
        currency,
        std::slice::from_mut(&mut item),
        0,
    )
    .await
    .map_err(|e| rename_field(e, "items[0]", "item"))?;
    let mut errors = Vec::new();
    let checked = check_line(&mut errors, 0, &item);
    let Some((name, line)) = checked.filter(|_| errors.is_empty()) else {
        return Err(rename_field(
            OrderError::Invalid(errors),
            "items[0]",
            "item",
        ));
    };
    edit(core, actor, order_id, then, |draft| {
        let count = draft.items.len();
        let same = draft.items.iter_mut().find(|i| {
            i.sku == item.sku
                && i.name == name
                && i.unit_price == line.unit_price
                && i64::from(i.tax_rate_bps) == line.tax_rate_bps
        });
        match same {
            Some(same) => {
                same.quantity = same.quantity.saturating_add(line.quantity);
                if same.quantity > MAX_QUANTITY {
                    return Err(invalid(
                        "item.quantity",
                        format!("the line would hold more than {MAX_QUANTITY}"),
                    ));
                }
            }
            None if count >= MAX_ITEMS => {
                return Err(invalid(
                    "item",
                    format!("an order has at most {MAX_ITEMS} lines"),
                ));
            }
            None => {
                let position = draft
                    .items
                    .iter()
                    .map(|i| i.position + 1)
                    .max()
                    .unwrap_or(0);
                draft.items.push(order_items::Model {
                    id: ids::new_id(ids::ORDER_ITEM),
                    order_id: draft.order.id.clone(),
                    position,
                    sku: item.sku.trim().to_owned(),
                    name: name.clone(),
                    quantity: line.quantity,
                    unit_price: line.unit_price,
                    line_total: 0,
                    discount_amount: 0,
                    tax_rate_bps: line.tax_rate_bps as i32,
                    tax_amount: 0,
                });
            }
        }
        Ok(())
    })
    .await
}

/// Changes the quantity of a pending order's line.
pub async fn update_item(
    core: &Core,
    actor: &Actor,
    order_id: &OrderId,
    item_id: &str,
    input: UpdateOrderItemIn,
) -> Result<OrderOut, OrderError> {
    if !(1..=MAX_QUANTITY).contains(&input.quantity) {
        return Err(invalid(
            "quantity",
            format!("must be between 1 and {MAX_QUANTITY}; remove the line to drop it"),
        ));
    }
    edit(core, actor, order_id, &Nothing, |draft| {
        let line = find_line(draft, item_id)?;
        draft.items[line].quantity = input.quantity;
        Ok(())
    })
    .await
}

/// Removes a pending order's line; the last one stays (cancel the order instead).
pub async fn remove_item(
    core: &Core,
    actor: &Actor,
    order_id: &OrderId,
    item_id: &str,
) -> Result<OrderOut, OrderError> {
    edit(core, actor, order_id, &Nothing, |draft| {
        let line = find_line(draft, item_id)?;
        if draft.items.len() == 1 {
            return Err(OrderError::NotEditable(
                "This is the order's last line; cancel the order instead".to_owned(),
            ));
        }
        draft.items.remove(line);
        Ok(())
    })
    .await
}

fn find_line(draft: &Draft, item_id: &str) -> Result<usize, OrderError> {
    draft
        .items
        .iter()
        .position(|i| i.id == item_id)
        .ok_or_else(|| OrderError::NotFound(format!("{} line {item_id}", draft.order.id)))
}

fn invalid(field: &str, message: impl Into<String>) -> OrderError {
    OrderError::Invalid(vec![FieldError::new(field, message)])
}

/// The errors of a one-line list, named after the field that carries the line.
fn rename_field(e: OrderError, from: &str, to: &str) -> OrderError {
    match e {
        OrderError::Invalid(errors) => OrderError::Invalid(
            errors
                .into_iter()
                .map(|mut e| {
                    if let Some(rest) = e.field.strip_prefix(from) {
                        e.field = format!("{to}{rest}");
                    }
                    e
                })
                .collect(),
        ),
        other => other,
    }
}

/// Runs `change` on the pending order under its row lock, then computes its totals again and
/// writes it with its lines and `order.updated`.
async fn edit(
    core: &Core,
    actor: &Actor,
    order_id: &OrderId,
    then: &dyn BeforeCommit<OrderOut>,
    change: impl FnOnce(&mut Draft) -> Result<(), OrderError>,
) -> Result<OrderOut, OrderError> {
    let txn = core.begin().await?;
    let order = store::lock_visible(&txn, actor, order_id.as_str())
        .await?
        .ok_or_else(|| OrderError::NotFound(order_id.to_string()))?;
    if order.status != OrderStatus::Pending {
        return Err(OrderError::NotEditable(format!(
            "The order is {}; only a pending order changes (a checkout in progress is \
             canceled by canceling its payment)",
            order.status
        )));
    }
    let items = store::load_items(&txn, &order.id).await?;
    let mut draft = Draft { order, items };
    change(&mut draft)?;
    let Draft {
        mut order,
        mut items,
    } = draft;
    let lines: Vec<LineIn> = items
        .iter()
        .map(|i| LineIn {
            quantity: i.quantity,
            unit_price: i.unit_price,
            tax_rate_bps: i64::from(i.tax_rate_bps),
        })
        .collect();
    let totals = totals_of(&lines, order.discount_amount, order.shipping_amount)
        .map_err(OrderError::Invalid)?;
    for (item, line) in items.iter_mut().zip(&totals.lines) {
        item.line_total = line.gross;
        item.discount_amount = line.discount;
        item.tax_amount = line.tax;
    }
    let at = core.now();
    order_items::Entity::delete_many()
        .filter(order_items::Column::OrderId.eq(&order.id))
        .exec(&txn)
        .await?;
    order_items::Entity::insert_many(items.iter().cloned().map(|i| i.into_active_model()))
        .exec_without_returning(&txn)
        .await?;
    let revision = order.revision + 1;
    let mut active = order.clone().into_active_model();
    active.subtotal_amount = Set(totals.subtotal);
    active.discount_amount = Set(totals.discount);
    active.shipping_amount = Set(totals.shipping);
    active.tax_amount = Set(totals.tax);
    active.total_amount = Set(totals.total);
    active.shipping_address = Set(order.shipping_address.take());
    active.billing_address = Set(order.billing_address.take());
    active.revision = Set(revision);
    active.updated_at = Set(at);
    let order = active.update(&txn).await?;
    let out = order_out(order, items);
    core.outbox
        .record(&txn, Event::Order(OrderChange::Updated, &out), at)
        .await?;
    then.before_commit(&txn, &out).await?;
    core.commit(txn).await?;
    Ok(out)
}
