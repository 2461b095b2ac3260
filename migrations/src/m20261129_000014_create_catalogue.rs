use sea_orm_migration::{prelude::*, schema::*};

/// The catalogue: products by SKU with a price per currency, so an order a buyer builds from
/// SKUs and quantities is priced here, never by the browser.
///
/// - `products`: a SKU's name, and whether it is for sale.
/// - `product_prices`: its unit price in minor units, one row per currency.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Products::Table)
                    .if_not_exists()
                    .col(string_len(Products::Sku, 255).primary_key())
                    .col(string_len(Products::Name, 255))
                    .col(boolean(Products::Active))
                    .col(timestamp_with_time_zone(Products::CreatedAt))
                    .col(timestamp_with_time_zone(Products::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ProductPrices::Table)
                    .if_not_exists()
                    .col(string_len(ProductPrices::Sku, 255))
                    .col(string_len(ProductPrices::Currency, 3))
                    .col(big_integer(ProductPrices::UnitPrice))
                    .primary_key(
                        Index::create()
                            .col(ProductPrices::Sku)
                            .col(ProductPrices::Currency),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(ProductPrices::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Products::Table).if_exists().to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Products {
    Table,
    Sku,
    Name,
    Active,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ProductPrices {
    Table,
    Sku,
    Currency,
    UnitPrice,
}
