//! Payments in the database.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Select,
};

use super::entities::payments;
use super::model::PaymentStatus;
use super::revenue::{self, Move};
use crate::platform::Actor;
use crate::platform::pagination::PageRequest;
use crate::providers::ProviderState;

/// Payments the actor may see: their own, or anyone's for an admin.
fn visible_to(actor: &Actor) -> Select<payments::Entity> {
    let select = payments::Entity::find();
    if actor.is_admin() {
        select
    } else {
        select.filter(payments::Column::UserId.eq(&actor.user_id))
    }
}

/// The payment, if it exists and the actor may see it. Read by its key alone and scoped here
/// (see `orders::store::find_visible`).
pub async fn find_visible<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    payment_id: &str,
) -> Result<Option<payments::Model>, DbErr> {
    Ok(find(db, payment_id)
        .await?
        .filter(|payment| actor.is_admin() || payment.user_id == actor.user_id))
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    payment_id: &str,
) -> Result<Option<payments::Model>, DbErr> {
    payments::Entity::find_by_id(payment_id).one(db).await
}

/// The payment under the transaction's exclusive lock.
pub async fn lock<C: ConnectionTrait>(txn: &C, payment_id: &str) -> Result<payments::Model, DbErr> {
    payments::Entity::find_by_id(payment_id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("payment {payment_id}")))
}

pub async fn insert<C: ConnectionTrait>(txn: &C, payment: &payments::Model) -> Result<(), DbErr> {
    payments::ActiveModel::from(payment.clone())
        .insert(txn)
        .await?;
    Ok(())
}

/// The pending payments of an order. Selected by the order alone and filtered here: with a
/// `status = $2` condition too, PostgreSQL's generic plan for the prepared statement (made while
/// the table was small) used the `(status, expires_at)` index and read every pending payment of
/// every order, so each checkout grew slower with the number of open checkouts. An order has
/// only the few payments of its own checkouts.
pub async fn pending_of_order<C: ConnectionTrait>(
    db: &C,
    order_id: &str,
) -> Result<Vec<payments::Model>, DbErr> {
    Ok(payments::Entity::find()
        .filter(payments::Column::OrderId.eq(order_id))
        .all(db)
        .await?
        .into_iter()
        .filter(|p| p.status == PaymentStatus::Pending)
        .collect())
}

/// Pending payments of a user, at most `batch`.
pub async fn pending_of_user<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    batch: u64,
) -> Result<Vec<payments::Model>, DbErr> {
    payments::Entity::find()
        .filter(payments::Column::UserId.eq(user_id))
        .filter(payments::Column::Status.eq(PaymentStatus::Pending))
        .limit(batch)
        .all(db)
        .await
}

/// A page of the payments the actor may see, newest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    user_id: Option<&str>,
    order_id: Option<&str>,
    status: Option<PaymentStatus>,
    page: &PageRequest,
) -> Result<Vec<payments::Model>, DbErr> {
    let mut select = visible_to(actor);
    if let Some(user_id) = user_id.filter(|_| actor.is_admin()) {
        select = select.filter(payments::Column::UserId.eq(user_id));
    }
    if let Some(order_id) = order_id {
        select = select.filter(payments::Column::OrderId.eq(order_id));
    }
    if let Some(status) = status {
        select = select.filter(payments::Column::Status.eq(status.as_str()));
    }
    page.fetch(select, payments::Column::Id, db).await
}

/// Pending payments past their time, at most `batch`.
pub async fn due_to_expire<C: ConnectionTrait>(
    db: &C,
    at: DateTime<Utc>,
    batch: u64,
) -> Result<Vec<payments::Model>, DbErr> {
    payments::Entity::find()
        .filter(payments::Column::Status.eq(PaymentStatus::Pending))
        .filter(payments::Column::ExpiresAt.lte(at))
        .limit(batch)
        .all(db)
        .await
}

/// Writes a provider state on a payment that is still pending: the charge reference, what
/// the buyer must do, and the new status when it moved (`to`, with a failure reason). Answers
/// the payment as it now is, and whether this write moved it (it does not when another one
/// recorded a change first).
pub async fn record_state<C: ConnectionTrait>(
    txn: &C,
    payment_id: &str,
    provider_state: &ProviderState,
    to: Option<(PaymentStatus, Option<String>)>,
    at: DateTime<Utc>,
) -> Result<(payments::Model, bool), DbErr> {
    let mut update = payments::Entity::update_many()
        .col_expr(payments::Column::UpdatedAt, at.into())
        .filter(payments::Column::Id.eq(payment_id))
        .filter(payments::Column::Status.eq(PaymentStatus::Pending));
    if let Some(reference) = &provider_state.payment_reference {
        update = update.col_expr(
            payments::Column::ProviderPaymentReference,
            reference.clone().into(),
        );
    }
    let next_action = match (&to, &provider_state.next_action) {
        (None, Some(action)) => {
            Some(serde_json::to_value(action).map_err(|e| DbErr::Json(e.to_string()))?)
        }
        _ => None,
    };
    update = update.col_expr(payments::Column::NextAction, next_action.into());
    if let Some((to, failure_reason)) = &to {
        if *to == PaymentStatus::Succeeded {
            update = update.col_expr(payments::Column::SucceededAt, Some(at).into());
        }
        update = update
            .col_expr(payments::Column::Status, (*to).into())
            .col_expr(
                payments::Column::FailureReason,
                failure_reason.clone().into(),
            );
    }
    let moved = update.exec(txn).await?.rows_affected > 0;
    let current = find(txn, payment_id)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("payment {payment_id}")))?;
    if moved && current.status == PaymentStatus::Succeeded {
        revenue::count(txn, &[Move::paid(at, &current.currency, current.amount)]).await?;
    }
    Ok((current, moved))
}

/// Adds a settled refund to the payment: its refunded amount and status.
pub async fn record_refunded<C: ConnectionTrait>(
    txn: &C,
    payment: &payments::Model,
) -> Result<(), DbErr> {
    payments::Entity::update_many()
        .col_expr(
            payments::Column::AmountRefunded,
            payment.amount_refunded.into(),
        )
        .col_expr(payments::Column::Status, payment.status.into())
        .col_expr(payments::Column::UpdatedAt, payment.updated_at.into())
        .filter(payments::Column::Id.eq(&payment.id))
        .exec(txn)
        .await?;
    Ok(())
}

/// How many payments are in each status.
pub async fn count_by_status<C: ConnectionTrait>(db: &C) -> Result<Vec<(String, i64)>, DbErr> {
    payments::Entity::find()
        .select_only()
        .column(payments::Column::Status)
        .column_as(Expr::col(payments::Column::Id).count(), "n")
        .group_by(payments::Column::Status)
        .into_tuple()
        .all(db)
        .await
}
