use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261122_000001_create_orders::Orders;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Payments::Table)
                    .if_not_exists()
                    .col(string_len(Payments::Id, 40).primary_key())
                    .col(string_len(Payments::OrderId, 40))
                    .col(string_len(Payments::UserId, 255))
                    .col(string_len(Payments::Provider, 32))
                    .col(string_len_null(Payments::ProviderReference, 255))
                    .col(text_null(Payments::CheckoutUrl))
                    .col(string_len(Payments::Status, 32))
                    .col(big_integer(Payments::Amount))
                    .col(big_integer(Payments::AmountRefunded).default(0))
                    .col(string_len(Payments::Currency, 3))
                    .col(text(Payments::SuccessUrl))
                    .col(text(Payments::CancelUrl))
                    .col(json_binary(Payments::Metadata))
                    .col(text_null(Payments::FailureReason))
                    .col(timestamp_with_time_zone(Payments::CreatedAt))
                    .col(timestamp_with_time_zone(Payments::UpdatedAt))
                    .col(timestamp_with_time_zone(Payments::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_payments_order_id")
                            .from(Payments::Table, Payments::OrderId)
                            .to(Orders::Table, Orders::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_payments_user_id_id",
                vec![Payments::UserId, Payments::Id],
            ),
            ("idx_payments_order_id", vec![Payments::OrderId]),
            (
                "idx_payments_status_expires_at",
                vec![Payments::Status, Payments::ExpiresAt],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Payments::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        // A provider's reference names one of our payments, never two.
        manager
            .create_index(
                Index::create()
                    .name("uq_payments_provider_reference")
                    .table(Payments::Table)
                    .col(Payments::Provider)
                    .col(Payments::ProviderReference)
                    .unique()
                    .to_owned(),
            )
            .await?;

        // The mock provider's own state: what a real provider would keep on its side.
        manager
            .create_table(
                Table::create()
                    .table(MockSessions::Table)
                    .if_not_exists()
                    .col(string_len(MockSessions::Id, 40).primary_key())
                    .col(string_len_uniq(MockSessions::PaymentId, 40))
                    .col(string_len(MockSessions::Status, 20))
                    .col(big_integer(MockSessions::Amount))
                    .col(string_len(MockSessions::Currency, 3))
                    .col(timestamp_with_time_zone(MockSessions::CreatedAt))
                    .col(timestamp_with_time_zone(MockSessions::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MockSessions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Payments::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Payments {
    Table,
    Id,
    OrderId,
    UserId,
    Provider,
    ProviderReference,
    CheckoutUrl,
    Status,
    Amount,
    AmountRefunded,
    Currency,
    SuccessUrl,
    CancelUrl,
    Metadata,
    FailureReason,
    CreatedAt,
    UpdatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum MockSessions {
    Table,
    Id,
    PaymentId,
    Status,
    Amount,
    Currency,
    CreatedAt,
    UpdatedAt,
}
