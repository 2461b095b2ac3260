use sea_orm_migration::{prelude::*, schema::*};

/// Inventory (built in): stock on hand per SKU, and reservations of it per order line.
///
/// - `stock`: what is on hand of a tracked SKU. A SKU without a row is not tracked (a service,
///   an invoice): nothing is reserved for it.
/// - `stock_reservations`: what a checkout holds of a SKU until it expires: `active`, then
///   `committed` (the order was paid: on hand went down) or `released` (the checkout ended
///   without payment). Available = on hand − the active, unexpired reservations: derived, never
///   a counter that drifts.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Stock::Table)
                    .if_not_exists()
                    .col(string_len(Stock::Sku, 255).primary_key())
                    .col(big_integer(Stock::OnHand).check(Expr::col(Stock::OnHand).gte(0)))
                    .col(timestamp_with_time_zone(Stock::CreatedAt))
                    .col(timestamp_with_time_zone(Stock::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StockReservations::Table)
                    .if_not_exists()
                    .col(string_len(StockReservations::Id, 40).primary_key())
                    .col(string_len(StockReservations::OrderId, 40))
                    .col(string_len(StockReservations::PaymentId, 40))
                    .col(string_len(StockReservations::Sku, 255))
                    .col(big_integer(StockReservations::Quantity))
                    .col(string_len(StockReservations::Status, 20))
                    .col(timestamp_with_time_zone(StockReservations::ExpiresAt))
                    .col(timestamp_with_time_zone(StockReservations::CreatedAt))
                    .col(timestamp_with_time_zone(StockReservations::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_stock_reservations_sku_active",
                vec![
                    StockReservations::Sku,
                    StockReservations::Status,
                    StockReservations::ExpiresAt,
                ],
            ),
            (
                "idx_stock_reservations_order",
                vec![StockReservations::OrderId, StockReservations::Status],
            ),
            (
                "idx_stock_reservations_payment",
                vec![StockReservations::PaymentId, StockReservations::Status],
            ),
        ] {
            let mut index = Index::create();
            index
                .name(name)
                .table(StockReservations::Table)
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
                    .table(StockReservations::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Stock::Table).if_exists().to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Stock {
    Table,
    Sku,
    OnHand,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum StockReservations {
    Table,
    Id,
    OrderId,
    PaymentId,
    Sku,
    Quantity,
    Status,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
}
