//! Gauges read from the database when `/metrics` is scraped, so every replica reports the same
//! truth and nothing is counted twice. Each context reads its own ([`Gauges`]); the connection
//! pool's are read here.

use async_trait::async_trait;
use sea_orm::{DatabaseBackend, DatabaseConnection, DbErr};

#[async_trait]
pub trait Gauges: Send + Sync {
    /// Reads this context's gauges from the database and sets them.
    async fn refresh(&self) -> Result<(), DbErr>;
}

/// The connection pool: idle and in-use connections, and the most it may open.
pub fn pool(db: &DatabaseConnection, max_connections: u32) {
    let (size, idle) = match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DatabaseBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    };
    metrics::gauge!("db_pool_connections", "state" => "idle").set(idle as f64);
    metrics::gauge!("db_pool_connections", "state" => "in_use")
        .set(f64::from(size).max(idle as f64) - idle as f64);
    metrics::gauge!("db_pool_max_connections").set(f64::from(max_connections));
}
