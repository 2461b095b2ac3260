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
            .await?;
        // The worker claims each partner's due deliveries up to what it may take of that
        // partner: one short range of this index per partner, however many deliveries of a
        // stalled partner are waiting.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS idx_deliveries_pending_partner_due \
                 ON deliveries (partner_id, next_attempt_at) WHERE status = 'pending'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_deliveries_pending_partner_due")
            .await?;
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
