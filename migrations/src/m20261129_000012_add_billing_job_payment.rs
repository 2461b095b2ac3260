use sea_orm_migration::{prelude::*, schema::*};

/// `billing_jobs.payment_id`: the payment a charge job makes, chosen (and kept) before the
/// provider is called. A charge run again after a crash between the provider's answer and our
/// record of it uses the same payment id, so the same idempotency key at the provider: it meets
/// the charge the first run made instead of charging the card a second time.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(BillingJobs::Table)
                    .add_column(string_len_null(BillingJobs::PaymentId, 40))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(BillingJobs::Table)
                    .drop_column(BillingJobs::PaymentId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum BillingJobs {
    Table,
    PaymentId,
}
