//! Gauges read from the database when `/metrics` is scraped, so every replica reports the same
//! truth and nothing is counted twice.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseBackend, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};

use crate::AppState;
use crate::payments::model::PaymentStatus;

use crate::platform::http::error::Result;
use crate::webhooks::status;
use crate::{payments::entities::payments, webhooks::entities::deliveries};

pub async fn refresh_gauges(state: &AppState) -> Result<()> {
    let counts: Vec<(String, i64)> = payments::Entity::find()
        .select_only()
        .column(payments::Column::Status)
        .column_as(Expr::col(payments::Column::Id).count(), "n")
        .group_by(payments::Column::Status)
        .into_tuple()
        .all(&state.core.db)
        .await?;
    for known in PaymentStatus::ALL {
        let n = counts
            .iter()
            .find(|(s, _)| s == known.as_str())
            .map_or(0, |(_, n)| *n);
        metrics::gauge!("payments", "status" => known.as_str()).set(n as f64);
    }
    let pending = deliveries::Entity::find()
        .filter(deliveries::Column::Status.eq(status::PENDING))
        .count(&state.core.db)
        .await?;
    let due = deliveries::Entity::find()
        .filter(deliveries::Column::Status.eq(status::PENDING))
        .filter(deliveries::Column::NextAttemptAt.lte(state.core.now()))
        .count(&state.core.db)
        .await?;
    metrics::gauge!("webhook_deliveries_pending").set(pending as f64);
    metrics::gauge!("webhook_queue_depth").set(due as f64);
    let (size, idle) = match state.core.db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let pool = state.core.db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DatabaseBackend::Sqlite => {
            let pool = state.core.db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    };
    metrics::gauge!("db_pool_connections", "state" => "idle").set(idle as f64);
    metrics::gauge!("db_pool_connections", "state" => "in_use")
        .set(f64::from(size).max(idle as f64) - idle as f64);
    metrics::gauge!("db_pool_max_connections")
        .set(f64::from(state.config.database_max_connections));
    Ok(())
}
