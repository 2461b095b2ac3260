use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use shared::Problem;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(shared::http::healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(shared::metrics::render))
        .route("/openapi.json", get(crate::openapi::serve_json))
        .route("/docs", get(crate::openapi::serve_docs))
        .route("/docs/assets/{file}", get(crate::openapi::serve_docs_asset))
}

/// Ready when payment-ms answers its own readiness check (which includes the database).
async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, Problem> {
    if state.payment_ms.ready().await {
        Ok(Json(json!({"status": "ready"})))
    } else {
        Err(Problem::service_unavailable(
            "upstream_unavailable",
            "The payment service is not ready",
        ))
    }
}
