use sea_orm_migration::{prelude::*, schema::*};

/// Per-partner isolation of webhook delivery: a partner whose attempts keep failing is backed
/// off (its deliveries are not claimed before `backoff_until`), and a delivery claimed again
/// and again without its outcome being recorded is stopped rather than sent forever.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Partners::Table)
                    .add_column(integer(Partners::FailingAttempts).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Partners::Table)
                    .add_column(timestamp_with_time_zone_null(Partners::BackoffUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .add_column(integer(Deliveries::UnrecordedClaims).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .drop_column(Deliveries::UnrecordedClaims)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Partners::Table)
                    .drop_column(Partners::BackoffUntil)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Partners::Table)
                    .drop_column(Partners::FailingAttempts)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Partners {
    Table,
    FailingAttempts,
    BackoffUntil,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    UnrecordedClaims,
}
