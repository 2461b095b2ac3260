//! The deleted users' statements.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};

use super::entities::deleted_users;

pub async fn is_deleted<C: ConnectionTrait>(db: &C, user_id: &str) -> Result<bool, DbErr> {
    Ok(deleted_users::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .is_some())
}

/// Records that `user_id` was deleted (once: a second event changes nothing).
pub async fn mark_deleted<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    event_id: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    deleted_users::Entity::insert(deleted_users::ActiveModel {
        user_id: Set(user_id.to_owned()),
        event_id: Set(event_id.chars().take(200).collect()),
        deleted_at: Set(at),
    })
    .on_conflict(
        OnConflict::column(deleted_users::Column::UserId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}
