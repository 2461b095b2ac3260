//! Moving orders through their lifecycle, one or many at once: the transition table consulted
//! for each, the rows updated, a history row and the move's event each, in the caller's
//! transaction.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use shared::api::OrderOut;

use super::entities::{order_items, order_status_history, orders};
use super::lifecycle::{self, By};
use super::model::{OrderStatus, order_out};
use super::store::{history_row, lock};
use crate::events::{Event, OrderChange, Outbox};
use crate::platform::db::find_each;

/// The orders of `order_ids`, under the transaction's locks, taken in their ids' order with one
/// statement per few hundred.
pub async fn lock_all(
    txn: &DatabaseTransaction,
    order_ids: &[&str],
) -> Result<Vec<orders::Model>, DbErr> {
    let mut locked = Vec::with_capacity(order_ids.len());
    for chunk in order_ids.chunks(crate::events::outbox::CHUNK) {
        let rows = orders::Entity::find()
            .filter(orders::Column::Id.is_in(chunk.iter().copied()))
            .order_by_asc(orders::Column::Id)
            .lock_exclusive()
            .all(txn)
            .await?;
        locked.extend(rows);
    }
    Ok(locked)
}

/// A move of an order: where to, who makes it (as the transition table and the history name
/// them), why, and a shipment's carrier and tracking number.
pub struct Transition<'a> {
    pub to: OrderStatus,
    pub by: By,
    pub actor: &'a str,
    pub reason: Option<&'a str>,
    pub shipment: Option<(&'a str, &'a str)>,
}

impl<'a> Transition<'a> {
    /// A move this service makes (a payment's outcome, the sweep, a refund).
    pub fn system(to: OrderStatus) -> Transition<'a> {
        Transition {
            to,
            by: By::System,
            actor: "system",
            reason: None,
            shipment: None,
        }
    }
}

/// Moves an order inside the caller's transaction, if the transition table lets `by` move it
/// from where it is (read under the row's lock) to `to`; when it moved, writes its history row
/// and records the event of its new status, with the order as it now is. Answers the order and
/// whether it moved (it does not when someone else moved it first, or the move is not allowed
/// from where it is).
pub async fn move_order(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    order_id: &str,
    transition: Transition<'_>,
    at: DateTime<Utc>,
) -> Result<(orders::Model, bool), DbErr> {
    let current = lock(txn, order_id).await?;
    move_locked(txn, outbox, current, transition, at).await
}

/// [`move_order`], for an order the caller read under its lock in this transaction already.
pub async fn move_locked(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    current: orders::Model,
    transition: Transition<'_>,
    at: DateTime<Utc>,
) -> Result<(orders::Model, bool), DbErr> {
    let mut moved = move_locked_all(txn, outbox, vec![current], &transition, at).await?;
    moved
        .pop()
        .ok_or_else(|| DbErr::Custom("an order's move answered nothing".to_owned()))
}

/// [`move_order`] for many orders at once (a bill run's payments), locked in their ids' order
/// with one statement, moved with a few for all. Answers each found, as in `order_ids`' order
/// of first appearance, and whether it moved.
pub async fn move_orders(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    order_ids: &[&str],
    transition: &Transition<'_>,
    at: DateTime<Utc>,
) -> Result<Vec<(orders::Model, bool)>, DbErr> {
    let locked = lock_all(txn, order_ids).await?;
    move_locked_all(txn, outbox, locked, transition, at).await
}

/// Moves orders the caller holds the locks of: each one the transition table lets `by` move
/// from where it is; their rows updated, history rows and events written, a few statements for
/// all. Answers each, in their order, and whether it moved.
pub async fn move_locked_all(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    orders: Vec<orders::Model>,
    transition: &Transition<'_>,
    at: DateTime<Utc>,
) -> Result<Vec<(orders::Model, bool)>, DbErr> {
    use crate::events::outbox::CHUNK;
    let to = transition.to;
    let mut answers = Vec::with_capacity(orders.len());
    let mut history_rows = Vec::new();
    for mut current in orders {
        let from = current.status;
        if !lifecycle::allowed(from, to, transition.by) {
            answers.push((current, false));
            continue;
        }
        current.status = to;
        current.updated_at = at;
        current.status_reason = transition.reason.map(str::to_owned);
        if let Some((carrier, tracking_number)) = transition.shipment {
            current.carrier = Some(carrier.to_owned());
            current.tracking_number = Some(tracking_number.to_owned());
        }
        let (actor, reason) = (transition.actor, transition.reason);
        history_rows.push(history_row(&current.id, Some(from), to, actor, reason, at));
        answers.push((current, true));
    }
    let moved: Vec<&orders::Model> = answers.iter().filter(|(_, m)| *m).map(|(o, _)| o).collect();
    if moved.is_empty() {
        return Ok(answers);
    }
    // The rows are locked: written as read and changed here, nothing to read back.
    let ids: Vec<&str> = moved.iter().map(|o| o.id.as_str()).collect();
    for chunk in ids.chunks(CHUNK) {
        let mut update = orders::Entity::update_many()
            .col_expr(orders::Column::Status, to.as_str().into())
            .col_expr(orders::Column::UpdatedAt, at.into())
            .col_expr(
                orders::Column::StatusReason,
                transition.reason.map(str::to_owned).into(),
            );
        if let Some((carrier, tracking_number)) = transition.shipment {
            update = update
                .col_expr(orders::Column::Carrier, Some(carrier.to_owned()).into())
                .col_expr(
                    orders::Column::TrackingNumber,
                    Some(tracking_number.to_owned()).into(),
                );
        }
        update
            .filter(orders::Column::Id.is_in(chunk.iter().copied()))
            .exec(txn)
            .await?;
    }
    for chunk in history_rows.chunks(CHUNK) {
        order_status_history::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(txn)
            .await?;
    }
    let mut items = items_of(txn, &ids).await?;
    let outs: Vec<OrderOut> = moved
        .iter()
        .map(|o| order_out((*o).clone(), items.remove(&o.id).unwrap_or_default()))
        .collect();
    let events: Vec<Event<'_>> = outs.iter().map(|out| event_of(to, out)).collect();
    outbox.record_all(txn, &events, at).await?;
    Ok(answers)
}

/// The lines of `order_ids`, by order, each order's in their positions' order.
pub async fn items_of<C: sea_orm::ConnectionTrait>(
    db: &C,
    order_ids: &[&str],
) -> Result<std::collections::HashMap<String, Vec<order_items::Model>>, DbErr> {
    let column = order_items::Column::OrderId;
    let mut found = find_each::<order_items::Entity, _>(db, column, order_ids, false).await?;
    found.sort_by_key(|i| i.position);
    let mut items: std::collections::HashMap<String, Vec<order_items::Model>> =
        std::collections::HashMap::new();
    for item in found {
        items.entry(item.order_id.clone()).or_default().push(item);
    }
    Ok(items)
}

/// The event of an order's move to `to`.
fn event_of(to: OrderStatus, out: &OrderOut) -> Event<'_> {
    match to {
        OrderStatus::Pending => Event::Order(OrderChange::Updated, out),
        OrderStatus::AwaitingPayment => Event::Order(OrderChange::PaymentPending, out),
        OrderStatus::PaymentFailed => Event::Order(OrderChange::PaymentFailed, out),
        OrderStatus::Paid => Event::OrderPaid(out),
        OrderStatus::Processing => Event::Order(OrderChange::Processing, out),
        OrderStatus::Shipped => Event::Order(OrderChange::Fulfilled, out),
        OrderStatus::Delivered => Event::Order(OrderChange::Delivered, out),
        OrderStatus::Completed => Event::Order(OrderChange::Completed, out),
        OrderStatus::RequiresAction => Event::Order(OrderChange::RequiresAction, out),
        OrderStatus::Canceled => Event::OrderCanceled(out),
        OrderStatus::Expired => Event::OrderExpired(out),
        OrderStatus::Refunded => Event::OrderRefunded(out),
    }
}
