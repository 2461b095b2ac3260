//! The built-in inventory: the `stock` and `stock_reservations` tables of this database.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::entities::{stock, stock_reservations};
use super::{Hold, InventoryClient, InventoryError, Short};
use crate::platform::Core;

pub mod status {
    pub const ACTIVE: &str = "active";
    pub const COMMITTED: &str = "committed";
    pub const RELEASED: &str = "released";
    pub const SHORT: &str = "short";
}

#[derive(Clone)]
pub struct BuiltIn {
    pub core: Core,
}

#[async_trait]
impl InventoryClient for BuiltIn {
    async fn reserve(&self, hold: Hold<'_>) -> Result<bool, InventoryError> {
        let skus: Vec<String> = hold.lines.iter().map(|w| w.sku.clone()).collect();
        let db = &self.core.db;
        // Most orders track nothing (services, invoices): no write transaction for them. Nor
        // can such an order hold anything from an earlier checkout: holds are only ever taken
        // on tracked SKUs, and stock rows are never deleted.
        let tracked = stock::Entity::find()
            .filter(stock::Column::Sku.is_in(skus.clone()))
            .count(db)
            .await?;
        if tracked == 0 {
            return Ok(false);
        }
        let txn = self.core.begin().await?;
        // Locked in SKU order, the one order every lock on stock is taken in.
        let rows = stock::Entity::find()
            .filter(stock::Column::Sku.is_in(skus.clone()))
            .order_by_asc(stock::Column::Sku)
            .lock_exclusive()
            .all(&txn)
            .await?;
        // This checkout replaces the order's earlier one and its holds.
        release_where(
            &txn,
            stock_reservations::Column::OrderId.eq(hold.order_id),
            hold.at,
        )
        .await?;
        let held = held_of(&txn, &skus, hold.at).await?;
        let mut shorts = Vec::new();
        let mut holds = Vec::new();
        for row in &rows {
            let Some(want) = hold.lines.iter().find(|w| w.sku == row.sku) else {
                continue;
            };
            let available = row.on_hand - held.get(&row.sku).copied().unwrap_or(0);
            if want.quantity > available {
                shorts.push(Short {
                    sku: row.sku.clone(),
                    wanted: want.quantity,
                    available,
                });
                continue;
            }
            holds.push(stock_reservations::Model {
                id: shared::ids::new_id(shared::ids::STOCK_RESERVATION),
                order_id: hold.order_id.to_owned(),
                payment_id: hold.payment_id.to_owned(),
                sku: row.sku.clone(),
                quantity: want.quantity,
                status: status::ACTIVE.to_owned(),
                expires_at: hold.expires_at,
                created_at: hold.at,
                updated_at: hold.at,
            });
        }
        if !shorts.is_empty() {
            // Nothing held: the transaction is rolled back as it is dropped.
            return Err(InventoryError::OutOfStock(shorts));
        }
        if holds.is_empty() {
            // Nothing of it is tracked any more: only the earlier holds were released.
            self.core.commit(txn).await?;
            return Ok(false);
        }
        stock_reservations::Entity::insert_many(holds.into_iter().map(|h| h.into_active_model()))
            .exec_without_returning(&txn)
            .await?;
        self.core.commit(txn).await?;
        Ok(true)
    }

    async fn release(&self, payment_id: &str, at: DateTime<Utc>) -> Result<(), InventoryError> {
        let txn = self.core.begin().await?;
        release_where(
            &txn,
            stock_reservations::Column::PaymentId.eq(payment_id),
            at,
        )
        .await?;
        self.core.commit(txn).await?;
        Ok(())
    }
}

/// Units of each of `skus` held now: the active holds that have not expired.
pub async fn held_of<C: ConnectionTrait>(
    db: &C,
    skus: &[String],
    at: DateTime<Utc>,
) -> Result<HashMap<String, i64>, DbErr> {
    let rows: Vec<(String, Option<i64>)> = stock_reservations::Entity::find()
        .select_only()
        .column(stock_reservations::Column::Sku)
        .column_as(Expr::cust("CAST(SUM(quantity) AS BIGINT)"), "held")
        .filter(stock_reservations::Column::Sku.is_in(skus.iter().cloned()))
        .filter(stock_reservations::Column::Status.eq(status::ACTIVE))
        .filter(stock_reservations::Column::ExpiresAt.gt(at))
        .group_by(stock_reservations::Column::Sku)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(sku, held)| (sku, held.unwrap_or(0)))
        .collect())
}

/// Releases the active holds `which` selects.
pub async fn release_where<C: ConnectionTrait>(
    txn: &C,
    which: SimpleExpr,
    at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let done = stock_reservations::Entity::update_many()
        .col_expr(stock_reservations::Column::Status, status::RELEASED.into())
        .col_expr(stock_reservations::Column::UpdatedAt, at.into())
        .filter(which)
        .filter(stock_reservations::Column::Status.eq(status::ACTIVE))
        .exec(txn)
        .await?;
    Ok(done.rows_affected)
}

/// The order was paid: its holds are committed, in the payment's transaction, and on hand goes
/// down by them. A hold that expired meanwhile is committed only if its units are still
/// available; if not, it is marked `short` (the order is paid and the stock is not there: a
/// person must look), loudly. Answers the SKUs that were short.
/// Which of `order_ids` hold stock (an active hold), with one read.
pub async fn orders_holding<C: ConnectionTrait>(
    txn: &C,
    order_ids: &[&str],
) -> Result<std::collections::HashSet<String>, DbErr> {
    let column = stock_reservations::Column::OrderId;
    let holds = crate::platform::db::find_each::<stock_reservations::Entity, _>(
        txn, column, order_ids, false,
    )
    .await?;
    Ok(holds
        .into_iter()
        .filter(|h| h.status == status::ACTIVE)
        .map(|h| h.order_id)
        .collect())
}

pub async fn commit_order<C: ConnectionTrait>(
    txn: &C,
    order_id: &str,
    at: DateTime<Utc>,
) -> Result<Vec<String>, DbErr> {
    let holds = stock_reservations::Entity::find()
        .filter(stock_reservations::Column::OrderId.eq(order_id))
        .filter(stock_reservations::Column::Status.eq(status::ACTIVE))
        .order_by_asc(stock_reservations::Column::Sku)
        .all(txn)
        .await?;
    let mut short = Vec::new();
    if holds.is_empty() {
        return Ok(short);
    }
    // Every row locked at once, in SKU order (as a checkout's holding locks them), before any
    // hold is touched: the two never wait on each other in a circle.
    let skus: Vec<String> = holds.iter().map(|h| h.sku.clone()).collect();
    let rows = stock::Entity::find()
        .filter(stock::Column::Sku.is_in(skus.clone()))
        .order_by_asc(stock::Column::Sku)
        .lock_exclusive()
        .all(txn)
        .await?;
    // One hold per SKU (an order's lines are added up per SKU), so what is held of each is
    // read once, before any of this order's holds changes.
    let held = held_of(txn, &skus, at).await?;
    for hold in holds {
        let Some(row) = rows.iter().find(|r| r.sku == hold.sku) else {
            continue;
        };
        let mine = if hold.expires_at > at {
            hold.quantity
        } else {
            0
        };
        let others = held.get(&hold.sku).copied().unwrap_or(0) - mine;
        let fits = row.on_hand - others >= hold.quantity;
        if fits {
            stock::Entity::update_many()
                .col_expr(
                    stock::Column::OnHand,
                    Expr::col(stock::Column::OnHand).sub(hold.quantity),
                )
                .col_expr(stock::Column::UpdatedAt, at.into())
                .filter(stock::Column::Sku.eq(hold.sku.as_str()))
                .exec(txn)
                .await?;
        } else {
            metrics::counter!("inventory_shortages_total").increment(1);
            tracing::error!(order_id, sku = %hold.sku, quantity = hold.quantity,
                on_hand = row.on_hand, held_by_others = others,
                "an order was paid after its stock hold expired and the stock is gone; it needs a person");
            short.push(hold.sku.clone());
        }
        stock_reservations::Entity::update_many()
            .col_expr(
                stock_reservations::Column::Status,
                if fits {
                    status::COMMITTED
                } else {
                    status::SHORT
                }
                .into(),
            )
            .col_expr(stock_reservations::Column::UpdatedAt, at.into())
            .filter(stock_reservations::Column::Id.eq(hold.id.as_str()))
            .exec(txn)
            .await?;
    }
    Ok(short)
}
