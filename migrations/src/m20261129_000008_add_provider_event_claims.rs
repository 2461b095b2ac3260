use sea_orm_migration::{prelude::*, schema::*};

/// A provider event is claimed before it is handled (`handling`), then marked `handled`: two
/// copies of one event arriving together are handled once, the second told to come back.
/// Events recorded before this migration were handled.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ProviderEvents::Table)
                    .add_column(string_len(ProviderEvents::State, 16).default("handled"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ProviderEvents::Table)
                    .drop_column(ProviderEvents::State)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ProviderEvents {
    Table,
    State,
}
