use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::HeaderMap;
use axum::routing::post;

use crate::AppState;
use crate::inbound::service::{self, Receipt};
use crate::platform::http::error::Result;

/// Provider events are small, but a few carry whole objects: more room than the API's bodies.
const WEBHOOK_BODY_LIMIT: usize = 256 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/providers/{provider}/webhook",
        post(receive).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)),
    )
}

/// Public: the provider's signature authenticates it, not the internal token.
async fn receive(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Receipt>> {
    Ok(Json(
        service::receive(&state, &provider, &headers, &body).await?,
    ))
}
