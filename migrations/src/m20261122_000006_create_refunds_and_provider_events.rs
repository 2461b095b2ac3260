use sea_orm_migration::{prelude::*, schema::*};

/// Refunds, the provider webhook events already handled, what a payment learns from its
/// provider (the charge behind a checkout, an action the buyer must take), and the mock
/// provider's own refund records.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Refunds::Table)
                    .if_not_exists()
                    .col(string_len(Refunds::Id, 40).primary_key())
                    .col(string_len(Refunds::PaymentId, 40))
                    .col(string_len(Refunds::OrderId, 40))
                    .col(string_len(Refunds::Provider, 32))
                    .col(string_len_null(Refunds::ProviderReference, 255))
                    .col(big_integer(Refunds::Amount))
                    .col(string_len(Refunds::Currency, 3))
                    .col(string_len(Refunds::Status, 16))
                    .col(text_null(Refunds::Reason))
                    .col(text_null(Refunds::FailureReason))
                    .col(string_len_null(Refunds::IdempotencyKey, 255))
                    .col(string_len_null(Refunds::RequestedBy, 255))
                    .col(timestamp_with_time_zone(Refunds::CreatedAt))
                    .col(timestamp_with_time_zone(Refunds::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refunds_payment_id")
                            .from(Refunds::Table, Refunds::PaymentId)
                            .to(Payments::Table, Payments::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            (
                "idx_refunds_payment_id_id",
                vec![Refunds::PaymentId, Refunds::Id],
                false,
            ),
            (
                "idx_refunds_status_updated_at",
                vec![Refunds::Status, Refunds::UpdatedAt],
                false,
            ),
            // A caller's retry finds the refund it started instead of starting another.
            (
                "uq_refunds_payment_id_idempotency_key",
                vec![Refunds::PaymentId, Refunds::IdempotencyKey],
                true,
            ),
            // A provider's refund is recorded once, whether we started it or learnt of it.
            (
                "uq_refunds_provider_reference",
                vec![Refunds::Provider, Refunds::ProviderReference],
                true,
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Refunds::Table);
            for col in cols {
                index.col(col);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        // Inbound provider webhooks already handled, so a replayed event changes nothing.
        manager
            .create_table(
                Table::create()
                    .table(ProviderEvents::Table)
                    .if_not_exists()
                    .col(string_len(ProviderEvents::Provider, 32))
                    .col(string_len(ProviderEvents::EventId, 255))
                    .col(string_len(ProviderEvents::EventType, 100))
                    .col(timestamp_with_time_zone(ProviderEvents::ReceivedAt))
                    .primary_key(
                        Index::create()
                            .col(ProviderEvents::Provider)
                            .col(ProviderEvents::EventId),
                    )
                    .to_owned(),
            )
            .await?;

        // SQLite alters one column per statement.
        for column in [
            string_len_null(Payments::ProviderPaymentReference, 255),
            json_binary_null(Payments::NextAction),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Payments::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_payments_provider_payment_reference")
                    .table(Payments::Table)
                    .col(Payments::Provider)
                    .col(Payments::ProviderPaymentReference)
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(MockSessions::Table)
                    .add_column(big_integer(MockSessions::AmountRefunded).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MockRefunds::Table)
                    .if_not_exists()
                    .col(string_len(MockRefunds::Id, 40).primary_key())
                    .col(string_len(MockRefunds::PaymentId, 40))
                    .col(big_integer(MockRefunds::Amount))
                    .col(timestamp_with_time_zone(MockRefunds::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MockRefunds::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(MockSessions::Table)
                    .drop_column(MockSessions::AmountRefunded)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_payments_provider_payment_reference")
                    .table(Payments::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Payments::NextAction, Payments::ProviderPaymentReference] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Payments::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(ProviderEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Refunds::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Refunds {
    Table,
    Id,
    PaymentId,
    OrderId,
    Provider,
    ProviderReference,
    Amount,
    Currency,
    Status,
    Reason,
    FailureReason,
    IdempotencyKey,
    RequestedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ProviderEvents {
    Table,
    Provider,
    EventId,
    EventType,
    ReceivedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Payments {
    Table,
    Id,
    Provider,
    ProviderPaymentReference,
    NextAction,
}

#[derive(DeriveIden)]
enum MockSessions {
    Table,
    AmountRefunded,
}

#[derive(DeriveIden)]
enum MockRefunds {
    Table,
    Id,
    PaymentId,
    Amount,
    CreatedAt,
}
