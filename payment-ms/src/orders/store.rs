//! Orders in the database.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, LoaderTrait, ModelTrait,
    QueryFilter, QueryOrder, QuerySelect, Select, Set,
};
use shared::api::OrderOut;

use super::entities::{order_items, order_status_history, orders};
use super::model::{OrderStatus, order_out};
use crate::platform::Actor;

pub use super::movement::{
    Transition, lock_all, move_locked, move_locked_all, move_order, move_orders,
};

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
    visible(db, actor, order_id, false).await
}

/// The order under the transaction's exclusive lock, if it exists and the actor may see it.
pub async fn lock_visible<C: ConnectionTrait>(
    txn: &C,
    actor: &Actor,
    order_id: &str,
) -> Result<Option<orders::Model>, DbErr> {
    visible(txn, actor, order_id, true).await
}

async fn visible<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    order_id: &str,
    lock: bool,
) -> Result<Option<orders::Model>, DbErr> {
    let mut select = orders::Entity::find_by_id(order_id);
    if lock {
        select = select.lock_exclusive();
    }
    Ok(select
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

/// Inserts a new order, its lines and its history's first row (`actor` created it).
pub async fn insert(
    txn: &DatabaseTransaction,
    order: &orders::Model,
    items: &[order_items::Model],
    actor: &str,
) -> Result<(), DbErr> {
    insert_all(txn, std::slice::from_ref(order), items, actor).await
}

/// [`insert`] for many orders at once (a bill run's), a few statements for all: `items` are
/// their lines, whichever order each belongs to.
pub async fn insert_all(
    txn: &DatabaseTransaction,
    orders: &[orders::Model],
    items: &[order_items::Model],
    actor: &str,
) -> Result<(), DbErr> {
    use crate::events::outbox::CHUNK;
    for chunk in orders.chunks(CHUNK) {
        orders::Entity::insert_many(chunk.iter().cloned().map(orders::ActiveModel::from))
            .exec_without_returning(txn)
            .await?;
    }
    for chunk in items.chunks(CHUNK) {
        order_items::Entity::insert_many(chunk.iter().cloned().map(order_items::ActiveModel::from))
            .exec_without_returning(txn)
            .await?;
    }
    let firsts: Vec<order_status_history::ActiveModel> = orders
        .iter()
        .map(|order| history_row(&order.id, None, order.status, actor, None, order.created_at))
        .collect();
    for chunk in firsts.chunks(CHUNK) {
        order_status_history::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(txn)
            .await?;
    }
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

/// How a list of orders is sorted: by creation (the id, which sorts by it) or by amount, then
/// id; newest or largest first when descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderSort {
    pub by_amount: bool,
    pub descending: bool,
}

/// Where the previous page ended: its last order's amount (when sorted by it) and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderCursor {
    pub amount: Option<i64>,
    pub id: String,
}

impl OrderSort {
    pub const NEWEST: OrderSort = OrderSort {
        by_amount: false,
        descending: true,
    };
    pub const NAMES: [&'static str; 4] = ["-created_at", "created_at", "-amount", "amount"];

    pub fn parse(name: &str) -> Option<OrderSort> {
        let (descending, field) = match name.strip_prefix('-') {
            Some(field) => (true, field),
            None => (false, name),
        };
        let by_amount = match field {
            "created_at" => false,
            "amount" => true,
            _ => return None,
        };
        Some(OrderSort {
            by_amount,
            descending,
        })
    }

    /// A page's cursor: the id, or `<amount>.<id>` when sorted by amount.
    pub fn cursor_of(self, order: &OrderOut) -> String {
        if self.by_amount {
            format!("{}.{}", order.amount, order.id)
        } else {
            order.id.clone()
        }
    }
}

/// What a list of orders keeps.
pub struct OrderFilter<'a> {
    /// Only this user's (for a service or admin; others see their own anyway).
    pub user_id: Option<&'a str>,
    pub status: Option<OrderStatus>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
}

/// Up to `limit + 1` of the orders the actor may see, filtered and sorted, after `after`, with
/// their lines.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    filter: &OrderFilter<'_>,
    sort: OrderSort,
    after: Option<&OrderCursor>,
    limit: u64,
) -> Result<Vec<OrderOut>, DbErr> {
    use sea_orm::sea_query::{Condition, Order};
    let mut select = visible_to(actor);
    if let Some(user_id) = filter.user_id {
        select = select.filter(orders::Column::UserId.eq(user_id));
    }
    if let Some(status) = filter.status {
        select = select.filter(orders::Column::Status.eq(status.as_str()));
    }
    if let Some(from) = filter.created_from {
        select = select.filter(orders::Column::CreatedAt.gte(from));
    }
    if let Some(to) = filter.created_to {
        select = select.filter(orders::Column::CreatedAt.lt(to));
    }
    let beyond = |column: orders::Column, value: sea_orm::Value| {
        if sort.descending {
            column.lt(value)
        } else {
            column.gt(value)
        }
    };
    if let Some(after) = after {
        let past_id = beyond(orders::Column::Id, after.id.clone().into());
        select = select.filter(match after.amount {
            Some(amount) => Condition::any()
                .add(beyond(orders::Column::TotalAmount, amount.into()))
                .add(
                    Condition::all()
                        .add(orders::Column::TotalAmount.eq(amount))
                        .add(past_id),
                ),
            None => Condition::all().add(past_id),
        });
    }
    let direction = if sort.descending {
        Order::Desc
    } else {
        Order::Asc
    };
    if sort.by_amount {
        select = select.order_by(orders::Column::TotalAmount, direction.clone());
    }
    let rows = select
        .order_by(orders::Column::Id, direction)
        .limit(limit + 1)
        .all(db)
        .await?;
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

/// Orders of a user not paid yet, at most `batch`.
pub async fn pending_of_user<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    batch: u64,
) -> Result<Vec<orders::Model>, DbErr> {
    orders::Entity::find()
        .filter(orders::Column::UserId.eq(user_id))
        .filter(orders::Column::Status.is_in(OrderStatus::OPEN))
        .limit(batch)
        .all(db)
        .await
}

/// Orders not paid yet past their time, at most `batch`.
pub async fn due_to_expire<C: ConnectionTrait>(
    db: &C,
    at: DateTime<Utc>,
    batch: u64,
) -> Result<Vec<orders::Model>, DbErr> {
    orders::Entity::find()
        .filter(orders::Column::Status.is_in(OrderStatus::OPEN))
        .filter(orders::Column::ExpiresAt.lte(at))
        .limit(batch)
        .all(db)
        .await
}

/// Writes one row of an order's history: its creation (`from` none) or a move.
pub async fn history<C: ConnectionTrait>(
    db: &C,
    order_id: &str,
    from: Option<OrderStatus>,
    to: OrderStatus,
    actor: &str,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = history_row(order_id, from, to, actor, reason, at);
    order_status_history::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub(super) fn history_row(
    order_id: &str,
    from: Option<OrderStatus>,
    to: OrderStatus,
    actor: &str,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> order_status_history::ActiveModel {
    order_status_history::ActiveModel {
        id: Set(shared::ids::new_id(shared::ids::ORDER_HISTORY)),
        order_id: Set(order_id.to_owned()),
        from_status: Set(from.map(|s| s.as_str().to_owned())),
        to_status: Set(to.as_str().to_owned()),
        actor: Set(actor.to_owned()),
        reason: Set(reason.map(str::to_owned)),
        at: Set(at),
    }
}

/// An order's history, oldest first.
pub async fn history_of<C: ConnectionTrait>(
    db: &C,
    order_id: &str,
) -> Result<Vec<order_status_history::Model>, DbErr> {
    order_status_history::Entity::find()
        .filter(order_status_history::Column::OrderId.eq(order_id))
        .order_by_asc(order_status_history::Column::Id)
        .all(db)
        .await
}

/// Order numbers' prefix: `ORD-2027-000042`.
pub const NUMBER_PREFIX: &str = "ORD";

/// The next `count` order numbers of `at`'s year, from the counter row (one update), in the
/// creating transaction.
pub async fn next_order_numbers(
    txn: &sea_orm::DatabaseTransaction,
    at: chrono::DateTime<chrono::Utc>,
    count: usize,
) -> Result<Vec<String>, DbErr> {
    use crate::platform::numbering;
    let scope = numbering::number_scope(NUMBER_PREFIX, true, at);
    numbering::next_formatted(txn, "order_counters", &scope, count).await
}
