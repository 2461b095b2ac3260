//! The HTTP surface of payment-ms: the `/internal/v1` API for the gateway, the mock provider's
//! hosted checkout page, inbound provider webhooks, and health checks.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shared::http::Limits;

use crate::AppState;
use crate::platform::Actor;
use crate::platform::http::extract::IdempotencyKey;

use tracing::Instrument;

pub mod caller;
pub mod error;
pub mod extract;
mod health;
pub mod idempotency;
pub mod page;

/// The service's router: `api` (every context's routes that need the database) behind the
/// database guard, beside health and metrics, with the layers every request goes through.
pub fn router(api: Router<AppState>, state: AppState) -> Router {
    let limits = Limits {
        service: "payment-ms",
        request_timeout: state.config.request_timeout,
        timeout_status: StatusCode::SERVICE_UNAVAILABLE,
        body_limit: state.config.body_limit,
        admission: None,
    };
    // Everything that needs the database; health and metrics answer for themselves.
    let with_database = api.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        database_guard,
    ));
    let router = Router::new()
        .merge(health::router())
        .merge(with_database)
        .fallback(shared::problem::not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(detach));
    let sensitive = [
        header::AUTHORIZATION,
        shared::internal::names::INTERNAL_TOKEN,
    ];
    shared::http::with_common_layers(router, limits, &sensitive)
}

/// Runs each request's handler in a task of its own, so a client that disconnects (or the
/// request timeout) stops waiting for the answer but never cancels the work halfway. Work cut
/// between two statements would be rolled back, but a cancellation during a PostgreSQL `BEGIN`
/// leaves the pooled connection inside a transaction that later requests then run in (an sqlx
/// 0.9.0 bug, fixed upstream after that release). Finished work is also what idempotency
/// expects: a retry then finds the stored answer instead of a claim left in progress.
/// The task carries the request's span, so what the handler logs has the request id, and the
/// request id as the correlation id of the events it records.
async fn detach(request: Request, next: Next) -> Response {
    // The events a request records belong to its flow: the request id, as the gateway passed
    // it (or made it).
    let flow = request
        .headers()
        .get(shared::internal::names::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(|id| id.chars().take(200).collect::<String>());
    let work = crate::events::outbox::in_scope(next.run(request));
    let work = async move {
        match flow {
            Some(flow) => crate::events::outbox::correlated(flow, work).await,
            None => work.await,
        }
    };
    match tokio::spawn(work.in_current_span()).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "request handler panicked");
            shared::Problem::internal().into_response()
        }
    }
}

/// While the database is known to be down, answers 503 at once rather than letting each
/// request wait out the pool; a request that meets a transient database error has the
/// database checked (see [`crate::platform::db::Outage`]).
async fn database_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.outage.is_down() {
        return crate::platform::http::error::database_unavailable().into_response();
    }
    let response = next.run(request).await;
    if response
        .extensions()
        .get::<crate::platform::http::error::DatabaseUnavailable>()
        .is_some()
    {
        state.outage.suspect();
    }
    response
}

/// The settings of an idempotent POST that creates something (201).
pub(crate) fn idempotent<'a>(
    state: &'a AppState,
    caller: &'a Actor,
    key: IdempotencyKey,
    uri: &'a Uri,
    body: &'a [u8],
) -> idempotency::Request<'a> {
    idempotency::Request {
        db: &state.core.db,
        clock: state.core.clock.as_ref(),
        caller,
        key: key.0,
        method: "POST",
        path: uri.path(),
        body,
        ttl: state.config.idempotency_ttl,
        lock_timeout: state.config.request_timeout * 2,
        status: StatusCode::CREATED,
    }
}
