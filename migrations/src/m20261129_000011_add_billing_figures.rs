use sea_orm_migration::{prelude::*, schema::*};

/// What the billing figures read.
///
/// - `payments.succeeded_at`: when a payment succeeded (revenue by day is by this time).
///   Payments that succeeded before this migration take their `updated_at`, the best time
///   known for them.
/// - `subscriptions.mrr`: the subscription's monthly recurring revenue now (MRR now is one
///   sum).
/// - `subscription_mrr`: each change of a subscription's monthly recurring revenue (a start,
///   a plan change, a pause, an end), with the MRR after it and the change: MRR at any time
///   and its movements (new, expansion, contraction, churn, reactivation) are sums over it.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Payments::Table)
                    .add_column(timestamp_with_time_zone_null(Payments::SucceededAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Subscriptions::Table)
                    .add_column(big_integer(Subscriptions::Mrr).default(0))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE payments SET succeeded_at = updated_at \
             WHERE status IN ('succeeded', 'partially_refunded', 'refunded')",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS idx_payments_succeeded_at \
             ON payments (succeeded_at) WHERE succeeded_at IS NOT NULL",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS idx_refunds_settled \
             ON refunds (updated_at) WHERE status = 'succeeded'",
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(SubscriptionMrr::Table)
                    .if_not_exists()
                    .col(string_len(SubscriptionMrr::Id, 40).primary_key())
                    .col(string_len(SubscriptionMrr::SubscriptionId, 40))
                    .col(string_len_null(SubscriptionMrr::TestClockId, 40))
                    .col(string_len(SubscriptionMrr::Currency, 3))
                    .col(timestamp_with_time_zone(SubscriptionMrr::At))
                    .col(big_integer(SubscriptionMrr::Mrr))
                    .col(big_integer(SubscriptionMrr::Delta))
                    .col(string_len(SubscriptionMrr::Kind, 16))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_subscription_mrr_subscription_at",
                vec![
                    SubscriptionMrr::SubscriptionId,
                    SubscriptionMrr::At,
                    SubscriptionMrr::Id,
                ],
            ),
            (
                "idx_subscription_mrr_at",
                vec![SubscriptionMrr::At, SubscriptionMrr::Id],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(SubscriptionMrr::Table);
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
                    .table(SubscriptionMrr::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS idx_refunds_settled")
            .await?;
        db.execute_unprepared("DROP INDEX IF EXISTS idx_payments_succeeded_at")
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Subscriptions::Table)
                    .drop_column(Subscriptions::Mrr)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Payments::Table)
                    .drop_column(Payments::SucceededAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Payments {
    Table,
    SucceededAt,
}

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    Mrr,
}

#[derive(DeriveIden)]
enum SubscriptionMrr {
    Table,
    Id,
    SubscriptionId,
    TestClockId,
    Currency,
    At,
    Mrr,
    Delta,
    Kind,
}
