//! Refunds in the database.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entities::refunds;
use super::model::RefundState;
use crate::platform::pagination::PageRequest;
use crate::providers::{ProviderRefund, RefundStatus};

pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<refunds::Model>, DbErr> {
    refunds::Entity::find_by_id(id).one(db).await
}

/// The refund an Idempotency-Key already started on a payment.
pub async fn find_by_key<C: ConnectionTrait>(
    db: &C,
    payment_id: &str,
    key: &str,
) -> Result<Option<refunds::Model>, DbErr> {
    refunds::Entity::find()
        .filter(refunds::Column::PaymentId.eq(payment_id))
        .filter(refunds::Column::IdempotencyKey.eq(key))
        .one(db)
        .await
}

pub async fn of_payment<C: ConnectionTrait>(
    db: &C,
    payment_id: &str,
) -> Result<Vec<refunds::Model>, DbErr> {
    refunds::Entity::find()
        .filter(refunds::Column::PaymentId.eq(payment_id))
        .all(db)
        .await
}

/// What a payment's pending and succeeded refunds hold.
pub async fn held<C: ConnectionTrait>(db: &C, payment_id: &str) -> Result<i64, DbErr> {
    Ok(refunds::Entity::find()
        .filter(refunds::Column::PaymentId.eq(payment_id))
        .filter(refunds::Column::Status.is_in([RefundState::Pending, RefundState::Succeeded]))
        .all(db)
        .await?
        .iter()
        .map(|r| r.amount)
        .sum())
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    refund: refunds::ActiveModel,
) -> Result<refunds::Model, DbErr> {
    refund.insert(db).await
}

/// Inserts a refund made at the provider unless it is known already (by its reference);
/// answers whether it was inserted.
pub async fn insert_external<C: ConnectionTrait>(
    db: &C,
    refund: refunds::ActiveModel,
) -> Result<bool, DbErr> {
    let inserted = refunds::Entity::insert(refund)
        .on_conflict(
            OnConflict::columns([
                refunds::Column::Provider,
                refunds::Column::ProviderReference,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted > 0)
}

/// Writes what the provider said on a refund that is still pending. Answers the refund as it
/// now is, and the state this write moved it to (none when it stays pending, or another write
/// settled it first).
pub async fn settle<C: ConnectionTrait>(
    txn: &C,
    refund_id: &str,
    found: &ProviderRefund,
    at: DateTime<Utc>,
) -> Result<(refunds::Model, Option<RefundState>), DbErr> {
    let reference = Some(found.reference.clone()).filter(|r| !r.is_empty());
    let mut update = refunds::Entity::update_many()
        .col_expr(refunds::Column::UpdatedAt, at.into())
        .filter(refunds::Column::Id.eq(refund_id))
        .filter(refunds::Column::Status.eq(RefundState::Pending));
    if let Some(reference) = &reference {
        update = update.col_expr(refunds::Column::ProviderReference, reference.clone().into());
    }
    let to = match &found.status {
        RefundStatus::Pending => None,
        RefundStatus::Succeeded => Some(RefundState::Succeeded),
        RefundStatus::Failed { reason } => {
            update = update.col_expr(refunds::Column::FailureReason, reason.clone().into());
            Some(RefundState::Failed)
        }
    };
    if let Some(to) = to {
        update = update.col_expr(refunds::Column::Status, to.into());
    }
    let moved = update.exec(txn).await?.rows_affected == 1;
    let current = find(txn, refund_id)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("refund {refund_id}")))?;
    Ok((current, to.filter(|_| moved)))
}

pub async fn list<C: ConnectionTrait>(
    db: &C,
    payment_id: &str,
    page: &PageRequest,
) -> Result<Vec<refunds::Model>, DbErr> {
    let select = refunds::Entity::find().filter(refunds::Column::PaymentId.eq(payment_id));
    page.fetch(select, refunds::Column::Id, db).await
}

/// Pending refunds last touched before `before`, oldest first.
pub async fn pending_before<C: ConnectionTrait>(
    db: &C,
    before: DateTime<Utc>,
    batch: u64,
) -> Result<Vec<refunds::Model>, DbErr> {
    refunds::Entity::find()
        .filter(refunds::Column::Status.eq(RefundState::Pending))
        .filter(refunds::Column::UpdatedAt.lte(before))
        .order_by_asc(refunds::Column::UpdatedAt)
        .limit(batch)
        .all(db)
        .await
}
