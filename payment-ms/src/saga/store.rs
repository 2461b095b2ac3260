//! Sagas in the database: each move is a conditional update from the step the mover read, so
//! two movers (a reaction and the worker, two replicas) never both make it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::inventory_sagas::{self, Column, Entity};

/// Moves the saga of `payment_id` from one of `from` to `to`, due at `next` (and unleased).
/// Answers whether it moved.
pub async fn move_saga<C: ConnectionTrait>(
    db: &C,
    payment_id: &str,
    from: &[&str],
    to: &str,
    next: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let which = Column::PaymentId.eq(payment_id);
    Ok(move_where(db, which, from, to, next, at).await? == 1)
}

/// [`move_saga`] for the sagas of many payments at once: answers how many moved.
pub async fn move_sagas_of_payments<C: ConnectionTrait>(
    db: &C,
    payment_ids: &[&str],
    from: &[&str],
    to: &str,
    at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut moved = 0;
    for chunk in payment_ids.chunks(crate::events::outbox::CHUNK) {
        let which = Column::PaymentId.is_in(chunk.iter().copied());
        moved += move_where(db, which, from, to, at, at).await?;
    }
    Ok(moved)
}

/// Moves every saga of `order_id` in one of `from` to `to`, due at once.
pub async fn move_order_sagas<C: ConnectionTrait>(
    db: &C,
    order_id: &str,
    from: &[&str],
    to: &str,
    at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    move_where(db, Column::OrderId.eq(order_id), from, to, at, at).await
}

async fn move_where<C: ConnectionTrait>(
    db: &C,
    which: sea_orm::sea_query::SimpleExpr,
    from: &[&str],
    to: &str,
    next: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let res = Entity::update_many()
        .col_expr(Column::State, to.into())
        .col_expr(Column::NextAttemptAt, next.into())
        .col_expr(
            Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(Column::UpdatedAt, at.into())
        .filter(which)
        .filter(Column::State.is_in(from.iter().copied()))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// Sagas whose step is due at `at` and not leased, oldest due first, at most `batch`.
pub async fn due<C: ConnectionTrait>(
    db: &C,
    at: DateTime<Utc>,
    batch: u64,
) -> Result<Vec<inventory_sagas::Model>, DbErr> {
    Entity::find()
        .filter(Column::State.is_in(super::state::DUE))
        .filter(Column::NextAttemptAt.lte(at))
        .filter(
            sea_orm::Condition::any()
                .add(Column::LeaseUntil.is_null())
                .add(Column::LeaseUntil.lte(at)),
        )
        .order_by_asc(Column::NextAttemptAt)
        .limit(batch)
        .all(db)
        .await
}

/// Claims a due saga for `lease`: only if it is still at the step read and not leased since.
/// Answers whether this caller has it.
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    saga: &inventory_sagas::Model,
    until: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let mut update = Entity::update_many()
        .col_expr(Column::LeaseUntil, until.into())
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(Column::UpdatedAt, at.into())
        .filter(Column::PaymentId.eq(saga.payment_id.as_str()))
        .filter(Column::State.eq(saga.state.as_str()));
    update = match saga.lease_until {
        Some(lease) => update.filter(Column::LeaseUntil.eq(lease)),
        None => update.filter(Column::LeaseUntil.is_null()),
    };
    Ok(update.exec(db).await?.rows_affected == 1)
}

/// Puts a claimed step back, due again at `next`, with why it failed.
pub async fn retry_later<C: ConnectionTrait>(
    db: &C,
    payment_id: &str,
    state: &str,
    next: DateTime<Utc>,
    error: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::NextAttemptAt, next.into())
        .col_expr(
            Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(Column::LastError, Some(error.to_owned()).into())
        .col_expr(Column::UpdatedAt, at.into())
        .filter(Column::PaymentId.eq(payment_id))
        .filter(Column::State.eq(state))
        .exec(db)
        .await?;
    Ok(())
}

/// Records the reservation a late payment holds now (reserved again under another id).
pub async fn set_reservation<C: ConnectionTrait>(
    db: &C,
    payment_id: &str,
    reservation_id: &str,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::ReservationId, reservation_id.into())
        .filter(Column::PaymentId.eq(payment_id))
        .exec(db)
        .await?;
    Ok(())
}
