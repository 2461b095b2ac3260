use sea_orm_migration::{prelude::*, schema::*};

/// The transactional outbox: every event is written in the same transaction as the change
/// that caused it, and delivered from here after the commit.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .if_not_exists()
                    .col(string_len(Events::Id, 40).primary_key())
                    .col(string_len(Events::EventType, 64))
                    .col(string_len(Events::SubjectId, 40))
                    .col(json_binary(Events::Data))
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_subject_id")
                    .table(Events::Table)
                    .col(Events::SubjectId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    EventType,
    SubjectId,
    Data,
    CreatedAt,
}
