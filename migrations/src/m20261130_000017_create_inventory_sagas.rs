use sea_orm_migration::{prelude::*, schema::*};

/// The saga of each checkout against an external inventory service: one row per checkout
/// (payment), with the reservation it holds there and the step it is at. A worker retries due
/// steps under a lease, so a crash mid-way resumes, and each step's call is idempotent by the
/// reservation id.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(InventorySagas::Table)
                    .if_not_exists()
                    .col(string_len(InventorySagas::PaymentId, 40).primary_key())
                    .col(string_len(InventorySagas::OrderId, 40))
                    .col(string_len(InventorySagas::ReservationId, 100))
                    .col(string_len(InventorySagas::State, 30))
                    .col(json(InventorySagas::Lines))
                    .col(timestamp_with_time_zone(InventorySagas::ExpiresAt))
                    .col(integer(InventorySagas::Attempts).default(0))
                    .col(timestamp_with_time_zone(InventorySagas::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(InventorySagas::LeaseUntil))
                    .col(text_null(InventorySagas::LastError))
                    .col(timestamp_with_time_zone(InventorySagas::CreatedAt))
                    .col(timestamp_with_time_zone(InventorySagas::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_inventory_sagas_due",
                vec![InventorySagas::State, InventorySagas::NextAttemptAt],
            ),
            ("idx_inventory_sagas_order", vec![InventorySagas::OrderId]),
        ] {
            let mut index = Index::create();
            index
                .name(name)
                .table(InventorySagas::Table)
                .if_not_exists();
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(InventorySagas::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum InventorySagas {
    Table,
    PaymentId,
    OrderId,
    ReservationId,
    State,
    Lines,
    ExpiresAt,
    Attempts,
    NextAttemptAt,
    LeaseUntil,
    LastError,
    CreatedAt,
    UpdatedAt,
}
