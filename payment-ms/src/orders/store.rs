//! Orders in the database.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    LoaderTrait, ModelTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use shared::api::OrderOut;

use super::entities::{order_items, orders};
use super::model::{OrderStatus, order_out};
use crate::events::{Event, Outbox};
use crate::platform::Actor;
use crate::platform::pagination::PageRequest;

/// Orders the actor may see: their own, or anyone's for a service or an admin.
fn visible_to(actor: &Actor) -> Select<orders::Entity> {
    let select = orders::Entity::find();
    if actor.is_trusted() {
        select
    } else {
        select.filter(orders::Column::UserId.eq(&actor.user_id))
    }
}

/// The order, if it exists and the actor may see it. Read by its key alone and scoped here: with
/// the owner in the statement too, PostgreSQL's generic plan for it may take the owner's index
/// and read every order of a user with many.
pub async fn find_visible<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    order_id: &str,
) -> Result<Option<orders::Model>, DbErr> {
    Ok(orders::Entity::find_by_id(order_id)
        .one(db)
        .await?
        .filter(|order| actor.is_trusted() || order.user_id == actor.user_id))
}

/// The order under the transaction's exclusive lock: nothing changes it until the commit.
pub async fn lock<C: ConnectionTrait>(txn: &C, order_id: &str) -> Result<orders::Model, DbErr> {
    orders::Entity::find_by_id(order_id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("order {order_id}")))
}

pub async fn insert(
    txn: &DatabaseTransaction,
    order: &orders::Model,
    items: &[order_items::Model],
) -> Result<(), DbErr> {
    orders::ActiveModel::from(order.clone()).insert(txn).await?;
    order_items::Entity::insert_many(items.iter().cloned().map(order_items::ActiveModel::from))
        .exec(txn)
        .await?;
    Ok(())
}

pub async fn load_items<C: ConnectionTrait>(
    db: &C,
    order_id: &str,
) -> Result<Vec<order_items::Model>, DbErr> {
    order_items::Entity::find()
        .filter(order_items::Column::OrderId.eq(order_id))
        .order_by_asc(order_items::Column::Position)
        .all(db)
        .await
}

pub async fn load_out<C: ConnectionTrait>(db: &C, order: orders::Model) -> Result<OrderOut, DbErr> {
    let items = order
        .find_related(order_items::Entity)
        .order_by_asc(order_items::Column::Position)
        .all(db)
        .await?;
    Ok(order_out(order, items))
}

/// A page of the orders the actor may see, newest first, with their lines.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    user_id: Option<&str>,
    status: Option<OrderStatus>,
    page: &PageRequest,
) -> Result<Vec<OrderOut>, DbErr> {
    let mut select = visible_to(actor);
    if let Some(user_id) = user_id.filter(|_| actor.is_trusted()) {
        select = select.filter(orders::Column::UserId.eq(user_id));
    }
    if let Some(status) = status {
        select = select.filter(orders::Column::Status.eq(status.as_str()));
    }
    let rows = page.fetch(select, orders::Column::Id, db).await?;
    let items = rows
        .load_many(
            order_items::Entity::find().order_by_asc(order_items::Column::Position),
            db,
        )
        .await?;
    Ok(rows
        .into_iter()
        .zip(items)
        .map(|(order, items)| order_out(order, items))
        .collect())
}

/// Pending orders of a user, at most `batch`.
pub async fn pending_of_user<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    batch: u64,
) -> Result<Vec<orders::Model>, DbErr> {
    orders::Entity::find()
        .filter(orders::Column::UserId.eq(user_id))
        .filter(orders::Column::Status.eq(OrderStatus::Pending))
        .limit(batch)
        .all(db)
        .await
}

/// Pending orders past their time, at most `batch`.
pub async fn due_to_expire<C: ConnectionTrait>(
    db: &C,
    at: DateTime<Utc>,
    batch: u64,
) -> Result<Vec<orders::Model>, DbErr> {
    orders::Entity::find()
        .filter(orders::Column::Status.eq(OrderStatus::Pending))
        .filter(orders::Column::ExpiresAt.lte(at))
        .limit(batch)
        .all(db)
        .await
}

/// Moves an order from `from` to `to` inside the caller's transaction and, when it moved,
/// records the event of its new status with the order as it now is. Answers the order and whether it moved (it
/// does not when someone else moved it first, or it was never in `from`).
pub async fn move_order(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    order_id: &str,
    (from, to): (OrderStatus, OrderStatus),
    at: DateTime<Utc>,
) -> Result<(orders::Model, bool), DbErr> {
    let res = orders::Entity::update_many()
        .col_expr(orders::Column::Status, to.into())
        .col_expr(orders::Column::UpdatedAt, at.into())
        .filter(orders::Column::Id.eq(order_id))
        .filter(orders::Column::Status.eq(from.as_str()))
        .exec(txn)
        .await?;
    let current = orders::Entity::find_by_id(order_id)
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("order {order_id}")))?;
    let moved = res.rows_affected == 1;
    if moved {
        let out = load_out(txn, current.clone()).await?;
        let event = match to {
            OrderStatus::Pending => None,
            OrderStatus::Paid => Some(Event::OrderPaid(&out)),
            OrderStatus::Canceled => Some(Event::OrderCanceled(&out)),
            OrderStatus::Expired => Some(Event::OrderExpired(&out)),
            OrderStatus::Refunded => Some(Event::OrderRefunded(&out)),
        };
        if let Some(event) = event {
            outbox.record(txn, event, at).await?;
        }
    }
    Ok((current, moved))
}

/// Order numbers' prefix: `ORD-2027-000042`.
pub const NUMBER_PREFIX: &str = "ORD";

/// The next order number of `at`'s year, from the counter row, in the creating transaction:
/// gapless (a rolled-back creation gives its number back) and unique.
pub async fn next_order_number(
    txn: &sea_orm::DatabaseTransaction,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<String, DbErr> {
    use crate::platform::numbering;
    let scope = numbering::number_scope(NUMBER_PREFIX, true, at);
    let n = numbering::next_number(txn, "order_counters", &scope).await?;
    Ok(numbering::format_number(&scope, n))
}
