use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use shared::Problem;

use crate::AppState;
use crate::platform::http::error::database_unavailable;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(shared::http::healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Ready when the database answers. With NATS configured, its connection is reported too, but
/// does not make the service unready: events wait in the outbox while NATS is away, and
/// requests are served as ever.
async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, Problem> {
    if state.outage.is_down() {
        return Err(database_unavailable());
    }
    match state.core.db.ping().await {
        Ok(()) => Ok(Json(match &state.nats {
            None => json!({"status": "ready"}),
            Some(client) => json!({
                "status": "ready",
                "nats": if crate::platform::nats::connected(client) { "connected" } else { "disconnected" },
            }),
        })),
        Err(e) => {
            tracing::warn!(error = %e, "database not reachable");
            state.outage.suspect();
            Err(database_unavailable())
        }
    }
}

/// Metrics, with the gauges that are read from the database when scraped: payments by status,
/// the webhook queue, and the connection pool.
async fn metrics(State(state): State<AppState>) -> axum::response::Response {
    for gauges in state.gauges.iter() {
        if let Err(e) = gauges.refresh().await {
            tracing::warn!(error = %e, "could not read the gauges for /metrics");
        }
    }
    crate::platform::metrics::pool(&state.core.db, state.config.database_max_connections);
    shared::metrics::render().await
}
