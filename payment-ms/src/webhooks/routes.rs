use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use shared::{FieldError, Problem};

use crate::AppState;
use crate::platform::Actor;
use crate::platform::http::caller::allow;
use crate::platform::http::error::{Error, Result};
use crate::platform::http::extract::{IdempotencyKey, Json as Body, Query};
use crate::platform::http::idempotency;
use crate::platform::http::idempotent;
use crate::platform::pagination::Page;
use crate::webhooks::partners::{
    DeliveryId, DeliveryOut, ListQuery, PartnerId, PartnerIn, PartnerOut, PartnerPatch,
    PartnerWithSecret, RecoverIn, RecoverOut, ResendIn, RotateIn, WebhookError,
};

impl From<WebhookError> for Error {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Invalid(errors) => Problem::validation(errors).into(),
            WebhookError::NotFound(what) => Problem::not_found(what).into(),
            WebhookError::Builtin => Problem::conflict(
                "partner_builtin",
                "This partner is configured by N8N_WEBHOOK_URL and N8N_WEBHOOK_SECRET",
            )
            .into(),
            WebhookError::LimitReached(max) => Problem::conflict(
                "partner_limit_reached",
                format!(
                    "{max} partners are registered, the most WEBHOOK_MAX_PARTNERS allows; delete one first"
                ),
            )
            .into(),
            WebhookError::Disabled(detail) => Problem::conflict("partner_disabled", detail).into(),
            WebhookError::Fault(fault) => fault.into(),
        }
    }
}

/// The partner id in a path: another shape names no partner.
fn partner_id(raw: String) -> Result<PartnerId, WebhookError> {
    PartnerId::parse(&raw).ok_or_else(|| WebhookError::NotFound(format!("partner {raw}")))
}

/// Every route here is for admins.
fn admin(actor: &Actor) -> std::result::Result<(), Problem> {
    allow(actor.is_admin(), "Managing partners needs the admin role")
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/partners", post(create).get(list))
        .route("/partners/{id}", get(read).patch(update).delete(remove))
        .route("/partners/{id}/rotate-secret", post(rotate))
        .route("/partners/{id}/deliveries", get(deliveries))
        .route("/partners/{id}/deliveries/{delivery_id}", get(delivery))
        .route("/partners/{id}/resend", post(resend))
        .route("/partners/{id}/recover", post(recover))
        .route("/events/{id}/deliveries", get(event_deliveries))
}

async fn create(
    State(state): State<AppState>,
    actor: Actor,
    key: IdempotencyKey,
    uri: Uri,
    Body { value, raw }: Body<PartnerIn>,
) -> Response {
    let request = idempotent(&state, &actor, key, &uri, &raw);
    let (state, actor) = (&state, &actor);
    idempotency::run(request, |then| async move {
        admin(actor)?;
        Ok(state.partners.create_partner(value, &then).await?)
    })
    .await
}

async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<PartnerOut>>> {
    admin(&actor)?;
    Ok(Json(state.partners.list_partners(query).await?))
}

async fn read(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<PartnerOut>> {
    admin(&actor)?;
    let id = partner_id(id)?;
    Ok(Json(state.partners.get_partner(&id).await?))
}

async fn update(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body { value, .. }: Body<PartnerPatch>,
) -> Result<Json<PartnerOut>> {
    admin(&actor)?;
    let id = partner_id(id)?;
    Ok(Json(state.partners.update_partner(&id, value).await?))
}

async fn remove(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    admin(&actor)?;
    let id = partner_id(id)?;
    state.partners.delete_partner(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A JSON body that may be left out entirely, or be `null`.
fn optional_body<T: DeserializeOwned + Default>(raw: &Bytes) -> Result<T, Problem> {
    // No body at all is the default; anything else must be JSON (a stray newline is not).
    if raw.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice::<Option<T>>(raw)
        .map(Option::unwrap_or_default)
        .map_err(|e| Problem::validation(vec![FieldError::new("body", e.to_string())]))
}

async fn rotate(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<PartnerWithSecret>> {
    admin(&actor)?;
    let input: RotateIn = optional_body(&raw)?;
    let id = partner_id(id)?;
    Ok(Json(state.partners.rotate_secret(&id, input).await?))
}

async fn deliveries(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<DeliveryOut>>> {
    admin(&actor)?;
    let id = partner_id(id)?;
    Ok(Json(
        state.partners.list_deliveries(Some(&id), query).await?,
    ))
}

async fn delivery(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Json<DeliveryOut>> {
    admin(&actor)?;
    let id = partner_id(id)?;
    // Another shape names no delivery: one that is not found.
    let delivery = DeliveryId::parse(&delivery_id)
        .ok_or_else(|| WebhookError::NotFound(format!("delivery {delivery_id}")))?;
    Ok(Json(state.partners.get_delivery(&id, &delivery).await?))
}

async fn resend(
    State(state): State<AppState>,
    actor: Actor,
    key: IdempotencyKey,
    uri: Uri,
    Path(id): Path<String>,
    Body { value, raw }: Body<ResendIn>,
) -> Response {
    let request = idempotent(&state, &actor, key, &uri, &raw);
    let (state, actor) = (&state, &actor);
    idempotency::run(request, |then| async move {
        admin(actor)?;
        let id = partner_id(id)?;
        Ok(state.partners.resend(&id, value, &then).await?)
    })
    .await
}

async fn recover(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body { value, .. }: Body<RecoverIn>,
) -> Result<Json<RecoverOut>> {
    admin(&actor)?;
    let id = partner_id(id)?;
    Ok(Json(state.partners.recover(&id, value).await?))
}

async fn event_deliveries(
    State(state): State<AppState>,
    actor: Actor,
    Path(event_id): Path<String>,
    Query(mut query): Query<ListQuery>,
) -> Result<Json<Page<DeliveryOut>>> {
    admin(&actor)?;
    query.event_id = Some(event_id);
    Ok(Json(state.partners.list_deliveries(None, query).await?))
}
