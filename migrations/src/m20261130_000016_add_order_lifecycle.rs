use sea_orm_migration::{prelude::*, schema::*};

/// The order's whole life: totals, addresses, fulfillment, editable lines, a status history.
///
/// - `orders`: `subtotal_amount − discount_amount + shipping_amount + tax_amount =
///   total_amount` (existing orders: subtotal = total, the rest 0); the addresses as copied at
///   order time; the carrier and tracking number once shipped; the latest transition's reason;
///   `revision`, bumped by each edit of the lines (a checkout checks it has not moved).
/// - `order_items`: each line's share of the order's discount, its tax rate in basis points and
///   its tax.
/// - `order_status_history`: one row per transition (from, to, who, why, when), written in the
///   transition's transaction; the creation is the row with no `from`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in [
            big_integer(Orders::SubtotalAmount).default(0).to_owned(),
            big_integer(Orders::DiscountAmount).default(0).to_owned(),
            big_integer(Orders::ShippingAmount).default(0).to_owned(),
            big_integer(Orders::TaxAmount).default(0).to_owned(),
            json_null(Orders::ShippingAddress),
            json_null(Orders::BillingAddress),
            string_len_null(Orders::Carrier, 255),
            string_len_null(Orders::TrackingNumber, 255),
            text_null(Orders::StatusReason),
            big_integer(Orders::Revision).default(0).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Orders::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared("UPDATE orders SET subtotal_amount = total_amount")
            .await?;
        for column in [
            big_integer(OrderItems::DiscountAmount)
                .default(0)
                .to_owned(),
            integer(OrderItems::TaxRateBps).default(0).to_owned(),
            big_integer(OrderItems::TaxAmount).default(0).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(OrderItems::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Products::Table)
                    .add_column(integer(Products::TaxRateBps).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OrderStatusHistory::Table)
                    .if_not_exists()
                    .col(string_len(OrderStatusHistory::Id, 40).primary_key())
                    .col(string_len(OrderStatusHistory::OrderId, 40))
                    .col(string_len_null(OrderStatusHistory::FromStatus, 30))
                    .col(string_len(OrderStatusHistory::ToStatus, 30))
                    .col(string_len(OrderStatusHistory::Actor, 300))
                    .col(text_null(OrderStatusHistory::Reason))
                    .col(timestamp_with_time_zone(OrderStatusHistory::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_order_status_history_order")
                    .table(OrderStatusHistory::Table)
                    .col(OrderStatusHistory::OrderId)
                    .col(OrderStatusHistory::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // Lists filter by creation date, and sort by total.
        for (name, columns) in [
            ("idx_orders_total", [Orders::TotalAmount, Orders::Id]),
            ("idx_orders_created_at", [Orders::CreatedAt, Orders::Id]),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Orders::Table)
                        .col(columns[0].clone())
                        .col(columns[1].clone())
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(OrderStatusHistory::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        for index in ["idx_orders_total", "idx_orders_created_at"] {
            manager
                .get_connection()
                .execute_unprepared(&format!("DROP INDEX IF EXISTS {index}"))
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Products::Table)
                    .drop_column(Products::TaxRateBps)
                    .to_owned(),
            )
            .await?;
        for column in [
            OrderItems::DiscountAmount,
            OrderItems::TaxRateBps,
            OrderItems::TaxAmount,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(OrderItems::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Orders::SubtotalAmount,
            Orders::DiscountAmount,
            Orders::ShippingAmount,
            Orders::TaxAmount,
            Orders::ShippingAddress,
            Orders::BillingAddress,
            Orders::Carrier,
            Orders::TrackingNumber,
            Orders::StatusReason,
            Orders::Revision,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Orders::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone)]
enum Orders {
    Table,
    CreatedAt,
    TotalAmount,
    Id,
    SubtotalAmount,
    DiscountAmount,
    ShippingAmount,
    TaxAmount,
    ShippingAddress,
    BillingAddress,
    Carrier,
    TrackingNumber,
    StatusReason,
    Revision,
}

#[derive(DeriveIden)]
enum OrderItems {
    Table,
    DiscountAmount,
    TaxRateBps,
    TaxAmount,
}

#[derive(DeriveIden)]
enum OrderStatusHistory {
    Table,
    Id,
    OrderId,
    FromStatus,
    ToStatus,
    Actor,
    Reason,
    At,
}

#[derive(DeriveIden)]
enum Products {
    Table,
    TaxRateBps,
}
