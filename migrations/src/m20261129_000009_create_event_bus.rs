use sea_orm_migration::{prelude::*, schema::*};

/// Events between services.
///
/// - `events` gains its per-subject `sequence` (1, 2, … for one order or payment: consumers
///   ignore a stale update) and the `causation_id` of the inbound event that caused it. Events
///   recorded before have sequence 0. And its `correlation_id`: the request or the inbound event
///   whose flow it belongs to.
/// - `event_publications`: each event's publication to NATS JetStream (pending → published,
///   attempts, when to try next, the last error, the stream sequence). The relay claims due
///   rows by moving `next_attempt_at` past a lease, so a crashed relay's rows come due again.
/// - `inbox`: every inbound event handled, unique by `(source, message_id)`, inserted in the
///   transaction of the handler's (last) effect: a redelivered event changes nothing.
/// - `dead_letters`: inbound events that could not be handled, with the error and the number of
///   deliveries, until an admin replays them.
/// - `deleted_users`: users a `user.deleted` event said are gone: no order is made for them.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(big_integer(Events::Sequence).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(string_len_null(Events::CausationId, 200))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(string_len_null(Events::CorrelationId, 200))
                    .to_owned(),
            )
            .await?;
        // A subject's next sequence is one probe of this index, however many events it has.
        manager
            .create_index(
                Index::create()
                    .name("idx_events_subject_sequence")
                    .table(Events::Table)
                    .col(Events::SubjectId)
                    .col(Events::Sequence)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EventPublications::Table)
                    .if_not_exists()
                    .col(string_len(EventPublications::EventId, 40).primary_key())
                    .col(string_len(EventPublications::Status, 16))
                    .col(integer(EventPublications::Attempts).default(0))
                    .col(timestamp_with_time_zone(EventPublications::NextAttemptAt))
                    .col(text_null(EventPublications::LastError))
                    .col(big_integer_null(EventPublications::StreamSequence))
                    .col(timestamp_with_time_zone(EventPublications::CreatedAt))
                    .col(timestamp_with_time_zone_null(
                        EventPublications::PublishedAt,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS idx_event_publications_pending_due \
                 ON event_publications (next_attempt_at, event_id) WHERE status = 'pending'",
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Inbox::Table)
                    .if_not_exists()
                    .col(string_len(Inbox::Id, 40).primary_key())
                    .col(string_len(Inbox::Source, 200))
                    .col(string_len(Inbox::MessageId, 200))
                    .col(string_len(Inbox::EventType, 100))
                    .col(string_len(Inbox::Door, 8))
                    .col(string_len(Inbox::Outcome, 16))
                    .col(text(Inbox::Detail))
                    .col(json_binary(Inbox::Envelope))
                    .col(timestamp_with_time_zone(Inbox::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_inbox_source_message_id")
                    .table(Inbox::Table)
                    .col(Inbox::Source)
                    .col(Inbox::MessageId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DeadLetters::Table)
                    .if_not_exists()
                    .col(string_len(DeadLetters::Id, 40).primary_key())
                    .col(string_len_null(DeadLetters::Source, 200))
                    .col(string_len_null(DeadLetters::MessageId, 200))
                    .col(string_len_null(DeadLetters::EventType, 100))
                    .col(string_len(DeadLetters::Door, 8))
                    .col(string_len_null(DeadLetters::NatsSubject, 255))
                    .col(text(DeadLetters::Body))
                    .col(text(DeadLetters::Error))
                    .col(integer(DeadLetters::Deliveries))
                    .col(string_len(DeadLetters::Status, 16))
                    .col(timestamp_with_time_zone(DeadLetters::CreatedAt))
                    .col(timestamp_with_time_zone(DeadLetters::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DeletedUsers::Table)
                    .if_not_exists()
                    .col(string_len(DeletedUsers::UserId, 255).primary_key())
                    .col(string_len(DeletedUsers::EventId, 200))
                    .col(timestamp_with_time_zone(DeletedUsers::DeletedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_dead_letters_status_id")
                    .table(DeadLetters::Table)
                    .col(DeadLetters::Status)
                    .col(DeadLetters::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DeletedUsers::Table.into_iden(),
            DeadLetters::Table.into_iden(),
            Inbox::Table.into_iden(),
            EventPublications::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_events_subject_sequence")
                    .table(Events::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Events::CorrelationId.into_iden(),
            Events::CausationId.into_iden(),
            Events::Sequence.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Events::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    SubjectId,
    Sequence,
    CausationId,
    CorrelationId,
}

#[derive(DeriveIden)]
enum EventPublications {
    Table,
    EventId,
    Status,
    Attempts,
    NextAttemptAt,
    LastError,
    StreamSequence,
    CreatedAt,
    PublishedAt,
}

#[derive(DeriveIden)]
enum Inbox {
    Table,
    Id,
    Source,
    MessageId,
    EventType,
    Door,
    Outcome,
    Detail,
    Envelope,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum DeadLetters {
    Table,
    Id,
    Source,
    MessageId,
    EventType,
    Door,
    NatsSubject,
    Body,
    Error,
    Deliveries,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DeletedUsers {
    Table,
    UserId,
    EventId,
    DeletedAt,
}
