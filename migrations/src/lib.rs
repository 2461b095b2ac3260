//! The payment-ms schema, as SeaORM migrations that run on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectOptions, Database, DatabaseBackend, Statement};

mod m20261122_000001_create_orders;
mod m20261122_000002_create_payments;
mod m20261122_000003_create_idempotency_keys;
mod m20261122_000004_create_events;
mod m20261122_000005_create_partners_and_deliveries;
mod m20261122_000006_create_refunds_and_provider_events;
mod m20261129_000007_add_partner_backoff;
mod m20261129_000008_add_provider_event_claims;
mod m20261129_000009_create_event_bus;
mod m20261129_000010_create_billing;
mod m20261129_000011_add_billing_figures;
mod m20261129_000012_add_billing_job_payment;
mod m20261129_000013_create_inventory;
mod m20261129_000014_create_catalogue;
mod m20261129_000015_add_order_numbers;
mod m20261130_000016_add_order_lifecycle;
mod m20261130_000017_create_inventory_sagas;
mod m20261130_000018_drop_redundant_event_index;
mod m20261130_000019_create_figure_totals;
mod m20261130_000020_events_data_as_json;

pub use sea_orm_migration::MigratorTrait;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_orders::Migration),
            Box::new(m20261122_000002_create_payments::Migration),
            Box::new(m20261122_000003_create_idempotency_keys::Migration),
            Box::new(m20261122_000004_create_events::Migration),
            Box::new(m20261122_000005_create_partners_and_deliveries::Migration),
            Box::new(m20261122_000006_create_refunds_and_provider_events::Migration),
            Box::new(m20261129_000007_add_partner_backoff::Migration),
            Box::new(m20261129_000008_add_provider_event_claims::Migration),
            Box::new(m20261129_000009_create_event_bus::Migration),
            Box::new(m20261129_000010_create_billing::Migration),
            Box::new(m20261129_000011_add_billing_figures::Migration),
            Box::new(m20261129_000012_add_billing_job_payment::Migration),
            Box::new(m20261129_000013_create_inventory::Migration),
            Box::new(m20261129_000014_create_catalogue::Migration),
            Box::new(m20261129_000015_add_order_numbers::Migration),
            Box::new(m20261130_000016_add_order_lifecycle::Migration),
            Box::new(m20261130_000017_create_inventory_sagas::Migration),
            Box::new(m20261130_000018_drop_redundant_event_index::Migration),
            Box::new(m20261130_000019_create_figure_totals::Migration),
            Box::new(m20261130_000020_events_data_as_json::Migration),
        ]
    }
}

/// Any fixed number: the key of the PostgreSQL advisory lock that serializes migrations.
const MIGRATION_LOCK_KEY: i64 = 0x7061_796d_656e_7473; // "payments"

/// Applies every pending migration. On PostgreSQL, replicas starting together take turns on an
/// advisory lock, so only one of them changes the schema and the others find it up to date.
pub async fn migrate_up(database_url: &str) -> Result<(), DbErr> {
    // One connection: an advisory lock belongs to the session that took it.
    let mut options = ConnectOptions::new(database_url);
    options
        .max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    let db = Database::connect(options).await?;
    let backend = db.get_database_backend();
    if backend == DatabaseBackend::Postgres {
        db.execute_raw(Statement::from_string(
            backend,
            format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"),
        ))
        .await?;
    }
    let result = Migrator::up(&db, None).await;
    if backend == DatabaseBackend::Postgres {
        db.execute_raw(Statement::from_string(
            backend,
            format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"),
        ))
        .await?;
    }
    db.close().await?;
    result
}
