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
use crate::platform::http::caller::Caller;
use crate::platform::http::error::Result;
use crate::platform::http::extract::{IdempotencyKey, Json as Body, Query};
use crate::platform::http::idempotency;
use crate::platform::http::idempotent;
use crate::platform::pagination::Page;
use crate::webhooks::partners::{
    self as api, DeliveryOut, ListQuery, PartnerIn, PartnerOut, PartnerPatch, PartnerWithSecret,
    RecoverIn, RecoverOut, ResendIn, RotateIn,
};

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
    caller: Caller,
    key: IdempotencyKey,
    uri: Uri,
    Body { value, raw }: Body<PartnerIn>,
) -> Response {
    let request = idempotent(&state, &caller, key, &uri, &raw);
    idempotency::run(request, |claim| {
        api::create_partner(&state, &caller, value, claim)
    })
    .await
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<PartnerOut>>> {
    Ok(Json(api::list_partners(&state, &caller, query).await?))
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PartnerOut>> {
    Ok(Json(api::get_partner(&state, &caller, &id).await?))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body { value, .. }: Body<PartnerPatch>,
) -> Result<Json<PartnerOut>> {
    Ok(Json(
        api::update_partner(&state, &caller, &id, value).await?,
    ))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    api::delete_partner(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A JSON body that may be left out entirely, or be `null`.
fn optional_body<T: DeserializeOwned + Default>(raw: &Bytes) -> Result<T, Problem> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice::<Option<T>>(raw)
        .map(Option::unwrap_or_default)
        .map_err(|e| Problem::validation(vec![FieldError::new("body", e.to_string())]))
}

async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<PartnerWithSecret>> {
    let input: RotateIn = optional_body(&raw)?;
    Ok(Json(api::rotate_secret(&state, &caller, &id, input).await?))
}

async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<DeliveryOut>>> {
    Ok(Json(
        api::list_deliveries(&state, &caller, Some(&id), query).await?,
    ))
}

async fn delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Json<DeliveryOut>> {
    Ok(Json(
        api::get_delivery(&state, &caller, &id, &delivery_id).await?,
    ))
}

async fn resend(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    uri: Uri,
    Path(id): Path<String>,
    Body { value, raw }: Body<ResendIn>,
) -> Response {
    let request = idempotent(&state, &caller, key, &uri, &raw);
    idempotency::run(request, |claim| {
        api::resend(&state, &caller, &id, value, claim)
    })
    .await
}

async fn recover(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body { value, .. }: Body<RecoverIn>,
) -> Result<Json<RecoverOut>> {
    Ok(Json(api::recover(&state, &caller, &id, value).await?))
}

async fn event_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
    Query(mut query): Query<ListQuery>,
) -> Result<Json<Page<DeliveryOut>>> {
    query.event_id = Some(event_id);
    Ok(Json(
        api::list_deliveries(&state, &caller, None, query).await?,
    ))
}
