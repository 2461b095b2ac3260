use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .if_not_exists()
                    .col(string_len(Orders::Id, 40).primary_key())
                    .col(string_len(Orders::UserId, 255))
                    .col(string_len(Orders::Status, 20))
                    .col(string_len(Orders::Currency, 3))
                    .col(big_integer(Orders::TotalAmount))
                    .col(string_len_null(Orders::Reference, 255))
                    .col(json_binary(Orders::Metadata))
                    .col(timestamp_with_time_zone(Orders::CreatedAt))
                    .col(timestamp_with_time_zone(Orders::UpdatedAt))
                    .col(timestamp_with_time_zone(Orders::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_orders_user_id_id")
                    .table(Orders::Table)
                    .col(Orders::UserId)
                    .col(Orders::Id)
                    .to_owned(),
            )
            .await?;
        // The expiry sweep looks for pending orders past their time.
        manager
            .create_index(
                Index::create()
                    .name("idx_orders_status_expires_at")
                    .table(Orders::Table)
                    .col(Orders::Status)
                    .col(Orders::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OrderItems::Table)
                    .if_not_exists()
                    .col(string_len(OrderItems::Id, 40).primary_key())
                    .col(string_len(OrderItems::OrderId, 40))
                    .col(integer(OrderItems::Position))
                    .col(string_len(OrderItems::Sku, 255))
                    .col(string_len(OrderItems::Name, 255))
                    .col(big_integer(OrderItems::Quantity))
                    .col(big_integer(OrderItems::UnitPrice))
                    .col(big_integer(OrderItems::LineTotal))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_order_items_order_id")
                            .from(OrderItems::Table, OrderItems::OrderId)
                            .to(Orders::Table, Orders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_order_items_order_id")
                    .table(OrderItems::Table)
                    .col(OrderItems::OrderId)
                    .col(OrderItems::Position)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OrderItems::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Orders::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Orders {
    Table,
    Id,
    UserId,
    Status,
    Currency,
    TotalAmount,
    Reference,
    Metadata,
    CreatedAt,
    UpdatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum OrderItems {
    Table,
    Id,
    OrderId,
    Position,
    Sku,
    Name,
    Quantity,
    UnitPrice,
    LineTotal,
}
