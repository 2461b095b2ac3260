use sea_orm_migration::{prelude::*, schema::*};

/// Partners who receive signed webhooks, one delivery per (event, partner), and every attempt.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Partners::Table)
                    .if_not_exists()
                    .col(string_len(Partners::Id, 40).primary_key())
                    .col(string_len(Partners::Name, 255))
                    .col(text(Partners::Url))
                    .col(json_binary(Partners::EventTypes))
                    .col(boolean(Partners::Active))
                    .col(boolean(Partners::Builtin).default(false))
                    .col(text(Partners::Secret))
                    .col(text_null(Partners::PreviousSecret))
                    .col(timestamp_with_time_zone_null(
                        Partners::PreviousSecretExpiresAt,
                    ))
                    .col(integer(Partners::ConsecutiveFailures).default(0))
                    .col(text_null(Partners::DisabledReason))
                    .col(timestamp_with_time_zone(Partners::CreatedAt))
                    .col(timestamp_with_time_zone(Partners::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .if_not_exists()
                    .col(string_len(Deliveries::Id, 40).primary_key())
                    .col(string_len(Deliveries::EventId, 40))
                    .col(string_len(Deliveries::PartnerId, 40))
                    .col(string_len(Deliveries::Status, 16))
                    .col(integer(Deliveries::Attempts).default(0))
                    .col(integer(Deliveries::RoundStart).default(0))
                    .col(timestamp_with_time_zone(Deliveries::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Deliveries::LockedUntil))
                    .col(integer_null(Deliveries::LastStatusCode))
                    .col(text_null(Deliveries::LastError))
                    .col(timestamp_with_time_zone(Deliveries::CreatedAt))
                    .col(timestamp_with_time_zone(Deliveries::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Deliveries::CompletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deliveries_event_id")
                            .from(Deliveries::Table, Deliveries::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_deliveries_partner_id")
                            .from(Deliveries::Table, Deliveries::PartnerId)
                            .to(Partners::Table, Partners::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The worker's claim: due pending deliveries, oldest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_status_next_attempt_at")
                    .table(Deliveries::Table)
                    .col(Deliveries::Status)
                    .col(Deliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_partner_id_id")
                    .table(Deliveries::Table)
                    .col(Deliveries::PartnerId)
                    .col(Deliveries::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_event_id")
                    .table(Deliveries::Table)
                    .col(Deliveries::EventId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DeliveryAttempts::Table)
                    .if_not_exists()
                    .col(string_len(DeliveryAttempts::Id, 40).primary_key())
                    .col(string_len(DeliveryAttempts::DeliveryId, 40))
                    .col(integer(DeliveryAttempts::Attempt))
                    .col(timestamp_with_time_zone(DeliveryAttempts::StartedAt))
                    .col(integer(DeliveryAttempts::LatencyMs))
                    .col(integer_null(DeliveryAttempts::StatusCode))
                    .col(text_null(DeliveryAttempts::ResponseExcerpt))
                    .col(text_null(DeliveryAttempts::Error))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_delivery_attempts_delivery_id")
                            .from(DeliveryAttempts::Table, DeliveryAttempts::DeliveryId)
                            .to(Deliveries::Table, Deliveries::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One row per attempt number: a second worker recording the same attempt fails.
        manager
            .create_index(
                Index::create()
                    .name("uq_delivery_attempts_delivery_id_attempt")
                    .table(DeliveryAttempts::Table)
                    .col(DeliveryAttempts::DeliveryId)
                    .col(DeliveryAttempts::Attempt)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DeliveryAttempts::Table.into_iden(),
            Deliveries::Table.into_iden(),
            Partners::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Partners {
    Table,
    Id,
    Name,
    Url,
    EventTypes,
    Active,
    Builtin,
    Secret,
    PreviousSecret,
    PreviousSecretExpiresAt,
    ConsecutiveFailures,
    DisabledReason,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    EventId,
    PartnerId,
    Status,
    Attempts,
    RoundStart,
    NextAttemptAt,
    LockedUntil,
    LastStatusCode,
    LastError,
    CreatedAt,
    UpdatedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum DeliveryAttempts {
    Table,
    Id,
    DeliveryId,
    Attempt,
    StartedAt,
    LatencyMs,
    StatusCode,
    ResponseExcerpt,
    Error,
}
