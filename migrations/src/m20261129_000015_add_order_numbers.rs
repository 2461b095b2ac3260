use sea_orm_migration::{prelude::*, schema::*};

/// Readable order numbers (`ORD-2027-000042`), gapless and unique per year:
///
/// - `orders.number`: given in the creating transaction (orders made before this migration have
///   none), unique.
/// - `order_counters`: one row per scope, incremented in that transaction.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Orders::Table)
                    .add_column(string_len_null(Orders::Number, 60))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_orders_number")
                    .table(Orders::Table)
                    .col(Orders::Number)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OrderCounters::Table)
                    .if_not_exists()
                    .col(string_len(OrderCounters::Scope, 60).primary_key())
                    .col(big_integer(OrderCounters::LastValue))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(OrderCounters::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_orders_number")
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Orders::Table)
                    .drop_column(Orders::Number)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Number,
}

#[derive(DeriveIden)]
enum OrderCounters {
    Table,
    Scope,
    LastValue,
}
