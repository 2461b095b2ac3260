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

/// Ready when the database answers. With NATS and the account service configured, they are
/// reported too, but do not make the service unready: events wait in the outbox while NATS is
/// away, and only new orders wait for the account service; the rest is served as ever.
async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, Problem> {
    if state.outage.is_down() {
        return Err(database_unavailable());
    }
    let (pinged, accounts) = tokio::join!(state.core.db.ping(), state.accounts.healthy());
    match pinged {
        Ok(()) => {
            let mut ready = json!({"status": "ready"});
            if let Some(client) = &state.nats {
                ready["nats"] = json!(if crate::platform::nats::connected(client) {
                    "connected"
                } else {
                    "disconnected"
                });
            }
            if let Some(up) = accounts {
                ready["accounts"] = json!(if up { "up" } else { "down" });
            }
            Ok(Json(ready))
        }
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
