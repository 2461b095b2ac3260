//! The inbox's and the dead letters' statements.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, Set,
};
use shared::api::{DeadLetterOut, InboxEntryOut};
use shared::ids;

use super::entities::{dead_letters, inbox};
use crate::platform::pagination::PageRequest;

pub const DEAD: &str = shared::api::DEAD_LETTER_STATUSES[0];
pub const REPLAYED: &str = shared::api::DEAD_LETTER_STATUSES[1];

pub async fn find<C: ConnectionTrait>(
    db: &C,
    source: &str,
    message_id: &str,
) -> Result<Option<inbox::Model>, DbErr> {
    inbox::Entity::find()
        .filter(inbox::Column::Source.eq(source))
        .filter(inbox::Column::MessageId.eq(message_id))
        .one(db)
        .await
}

/// Records a handled event, unless it is already there: answers whether this call recorded it.
pub async fn record<C: ConnectionTrait>(db: &C, entry: &inbox::Model) -> Result<bool, DbErr> {
    let inserted = inbox::Entity::insert(inbox::ActiveModel::from(entry.clone()))
        .on_conflict(
            OnConflict::columns([inbox::Column::Source, inbox::Column::MessageId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted == 1)
}

pub async fn list<C: ConnectionTrait>(
    db: &C,
    page: &PageRequest,
    event_type: Option<&str>,
    outcome: Option<&str>,
) -> Result<Vec<inbox::Model>, DbErr> {
    let mut select = inbox::Entity::find();
    if let Some(event_type) = event_type {
        select = select.filter(inbox::Column::EventType.eq(event_type));
    }
    if let Some(outcome) = outcome {
        select = select.filter(inbox::Column::Outcome.eq(outcome));
    }
    page.fetch(select, inbox::Column::Id, db).await
}

/// What could not be handled, kept for an admin.
pub struct Burial<'a> {
    pub source: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub event_type: Option<&'a str>,
    pub door: &'a str,
    pub nats_subject: Option<&'a str>,
    pub body: &'a [u8],
    pub error: &'a str,
    pub deliveries: i32,
}

pub async fn bury<C: ConnectionTrait>(
    db: &C,
    burial: Burial<'_>,
    at: DateTime<Utc>,
) -> Result<String, DbErr> {
    let id = ids::new_id(ids::DEAD_LETTER);
    let clip = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    dead_letters::ActiveModel {
        id: Set(id.clone()),
        source: Set(burial.source.map(|s| clip(s, 200))),
        message_id: Set(burial.message_id.map(|s| clip(s, 200))),
        event_type: Set(burial.event_type.map(|s| clip(s, 100))),
        door: Set(burial.door.to_owned()),
        nats_subject: Set(burial.nats_subject.map(|s| clip(s, 255))),
        body: Set(String::from_utf8_lossy(burial.body).into_owned()),
        error: Set(clip(burial.error, 2000)),
        deliveries: Set(burial.deliveries),
        status: Set(DEAD.to_owned()),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(db)
    .await?;
    Ok(id)
}

pub async fn dead_letter<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<dead_letters::Model>, DbErr> {
    dead_letters::Entity::find_by_id(id).one(db).await
}

pub async fn dead_letters<C: ConnectionTrait>(
    db: &C,
    page: &PageRequest,
    status: Option<&str>,
) -> Result<Vec<dead_letters::Model>, DbErr> {
    let mut select = dead_letters::Entity::find();
    if let Some(status) = status {
        select = select.filter(dead_letters::Column::Status.eq(status));
    }
    page.fetch(select, dead_letters::Column::Id, db).await
}

/// A replay's outcome: `replayed`, or still `dead` with the new error.
pub async fn replayed<C: ConnectionTrait>(
    db: &C,
    letter: &dead_letters::Model,
    error: Option<&str>,
    at: DateTime<Utc>,
) -> Result<dead_letters::Model, DbErr> {
    let mut row: dead_letters::ActiveModel = letter.clone().into();
    row.deliveries = Set(letter.deliveries.saturating_add(1));
    row.updated_at = Set(at);
    match error {
        None => row.status = Set(REPLAYED.to_owned()),
        Some(error) => row.error = Set(error.chars().take(2000).collect()),
    }
    row.update(db).await
}

/// Dead letters waiting for an admin.
pub async fn count_dead<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    dead_letters::Entity::find()
        .filter(dead_letters::Column::Status.eq(DEAD))
        .count(db)
        .await
}

pub fn entry_out(m: inbox::Model) -> InboxEntryOut {
    InboxEntryOut {
        id: m.id,
        source: m.source,
        message_id: m.message_id,
        event_type: m.event_type,
        door: m.door,
        outcome: m.outcome,
        detail: m.detail,
        envelope: m.envelope,
        received_at: m.received_at,
    }
}

pub fn letter_out(m: dead_letters::Model) -> DeadLetterOut {
    DeadLetterOut {
        id: m.id,
        source: m.source,
        message_id: m.message_id,
        event_type: m.event_type,
        door: m.door,
        nats_subject: m.nats_subject,
        body: m.body,
        error: m.error,
        deliveries: m.deliveries,
        status: m.status,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}
