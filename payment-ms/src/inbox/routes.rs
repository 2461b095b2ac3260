//! `/internal/v1/events` (the HTTP door of the inbound pipeline), `/internal/v1/inbox` and
//! `/internal/v1/dead-letters`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::api::{DeadLetterOut, EventAccepted, INBOX_OUTCOMES, InboxEntryOut};
use shared::{FieldError, Problem, ids};

use super::service::{Door, InboxError, Received};
use super::store::{self, DEAD, REPLAYED};
use crate::AppState;
use crate::platform::Actor;
use crate::platform::http::caller::allow;
use crate::platform::http::error::{Error, Result, dependency_unavailable};
use crate::platform::http::extract::Query;
use crate::platform::pagination::{Page, PageRequest};
use crate::platform::validate as check;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events", post(receive))
        .route("/inbox", get(list_inbox))
        .route("/dead-letters", get(list_dead_letters))
        .route("/dead-letters/{id}", get(read_dead_letter))
        .route("/dead-letters/{id}/replay", post(replay))
}

impl From<InboxError> for Error {
    fn from(e: InboxError) -> Self {
        match e {
            InboxError::Invalid(errors) => Problem::validation(errors).into(),
            InboxError::Unavailable(detail) => dependency_unavailable(detail).into(),
            InboxError::Fault(fault) => fault.into(),
        }
    }
}

fn accepted(received: &Received) -> EventAccepted {
    EventAccepted {
        id: received.entry.message_id.clone(),
        duplicate: received.duplicate,
        outcome: received.entry.outcome.clone(),
        detail: received.entry.detail.clone(),
    }
}

/// An event from another service: 202 once handled (or found handled before).
async fn receive(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<EventAccepted>)> {
    allow(
        actor.is_trusted(),
        "Posting events needs the service or admin role",
    )?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json")
        && !essence.eq_ignore_ascii_case("application/cloudevents+json")
    {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported Media Type",
            "Send the event as application/cloudevents+json (or application/json)",
        )
        .into());
    }
    let received = state.inbox.receive(&body, Door::Http).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted(&received))))
}

#[derive(Debug, Deserialize)]
struct InboxQuery {
    limit: Option<u64>,
    cursor: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    outcome: Option<String>,
}

async fn list_inbox(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<InboxQuery>,
) -> Result<Json<Page<InboxEntryOut>>> {
    allow(actor.is_admin(), "The inbox is for admins")?;
    let mut errors = Vec::new();
    check::query_text(&mut errors, "type", query.event_type.as_deref());
    if let Some(outcome) = &query.outcome
        && !INBOX_OUTCOMES.contains(&outcome.as_str())
    {
        errors.push(FieldError::new(
            "outcome",
            shared::problem::one_of(INBOX_OUTCOMES),
        ));
    }
    check::finish(errors).map_err(Problem::validation)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref(), ids::INBOX)
        .map_err(Problem::validation)?;
    let rows = store::list(
        &state.core.db,
        &page,
        query.event_type.as_deref(),
        query.outcome.as_deref(),
    )
    .await?;
    Ok(Json(page.page(rows, |r| &r.id, store::entry_out)))
}

#[derive(Debug, Deserialize)]
struct DeadLetterQuery {
    limit: Option<u64>,
    cursor: Option<String>,
    status: Option<String>,
}

async fn list_dead_letters(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<DeadLetterQuery>,
) -> Result<Json<Page<DeadLetterOut>>> {
    allow(actor.is_admin(), "Dead letters are for admins")?;
    if let Some(status) = &query.status
        && ![DEAD, REPLAYED].contains(&status.as_str())
    {
        return Err(Problem::validation(vec![FieldError::new(
            "status",
            shared::problem::one_of([DEAD, REPLAYED]),
        )])
        .into());
    }
    let page = PageRequest::parse(query.limit, query.cursor.as_deref(), ids::DEAD_LETTER)
        .map_err(Problem::validation)?;
    let rows = store::dead_letters(&state.core.db, &page, query.status.as_deref()).await?;
    Ok(Json(page.page(rows, |r| &r.id, store::letter_out)))
}

async fn find_letter(state: &AppState, id: &str) -> Result<super::entities::dead_letters::Model> {
    let not_found = || Problem::not_found(format!("dead letter {id}"));
    if !ids::is_valid(ids::DEAD_LETTER, id) {
        return Err(not_found().into());
    }
    store::dead_letter(&state.core.db, id)
        .await?
        .ok_or_else(|| not_found().into())
}

async fn read_dead_letter(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<DeadLetterOut>> {
    allow(actor.is_admin(), "Dead letters are for admins")?;
    Ok(Json(store::letter_out(find_letter(&state, &id).await?)))
}

/// Runs a dead letter through the pipeline again (after the cause was fixed). Handled, or
/// found handled before: it is `replayed`. Failing again: it stays `dead` with the new error,
/// and the answer says why (422 for an event that can never be handled, 503 for one that may
/// later).
async fn replay(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    allow(actor.is_admin(), "Dead letters are for admins")?;
    let letter = find_letter(&state, &id).await?;
    if letter.status == REPLAYED {
        return Err(Problem::conflict(
            "dead_letter_replayed",
            "This dead letter was replayed already",
        )
        .into());
    }
    let door = if letter.door == "nats" {
        Door::Nats
    } else {
        Door::Http
    };
    let outcome = state.inbox.receive(letter.body.as_bytes(), door).await;
    let at = state.core.now();
    match outcome {
        Ok(received) => {
            let letter = store::replayed(&state.core.db, &letter, None, at).await?;
            metrics::counter!("inbox_dead_letters_replayed_total").increment(1);
            Ok(Json(json!({
                "dead_letter": store::letter_out(letter),
                "event": accepted(&received),
            })))
        }
        Err(e) => {
            store::replayed(&state.core.db, &letter, Some(&e.to_string()), at).await?;
            Err(e.into())
        }
    }
}
