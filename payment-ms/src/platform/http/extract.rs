//! Extractors whose rejections are problem+json: bodies, query strings, the idempotency key.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use shared::internal::IDEMPOTENCY_KEY_HEADER;
use shared::{FieldError, Problem};

/// A JSON body, and the raw bytes it was read from (idempotency fingerprints the request).
pub struct Json<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let content_type_ok = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        if !content_type_ok {
            return Err(Problem::from_status(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ));
        }
        let raw = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| Problem::from_status(rejection.status()))?;
        // Every body of this API is an object; serde would also read a struct from an array.
        let object = raw.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if !object && serde_json::from_slice::<serde::de::IgnoredAny>(&raw).is_ok() {
            return Err(Problem::validation(vec![shared::FieldError::new(
                "body",
                "must be a JSON object",
            )]));
        }
        let value = axum::Json::<T>::from_bytes(&raw).map_err(Problem::from)?;
        Ok(Json {
            value: value.0,
            raw,
        })
    }
}

/// A JSON body that may be left out: none at all (no content type, nothing sent) is the
/// default value; anything sent is read as [`Json`] is.
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let has_type = req.headers().contains_key(axum::http::header::CONTENT_TYPE);
        let empty_length = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.trim() == "0");
        if !has_type && empty_length {
            // No content type: whatever came is not a body to read; a sent one is refused.
            let raw = Bytes::from_request(req, state)
                .await
                .map_err(|rejection| Problem::from_status(rejection.status()))?;
            if raw.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(T::default()));
            }
            return Err(Problem::from_status(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ));
        }
        Ok(OptionalJson(
            Json::<T>::from_request(req, state).await?.value,
        ))
    }
}

/// A query string; a malformed one is a 422 naming the parameter.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(Query(q.0)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let text = e.body_text();
                let message = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                let (field, message) = match message.split_once(": ") {
                    Some((field, rest)) if !field.contains(' ') => (field, rest),
                    _ => ("query", message),
                };
                Err(Problem::validation(vec![FieldError::new(field, message)]))
            }
            Err(other) => Err(Problem::bad_request("bad_query", other.body_text())),
        }
    }
}

/// The `Idempotency-Key` header, when present: 1 to 255 visible ASCII characters.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let Some(value) = parts.headers.get(IDEMPOTENCY_KEY_HEADER) else {
            return Ok(IdempotencyKey(None));
        };
        let key = value
            .to_str()
            .ok()
            .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                Problem::bad_request(
                    "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 255 visible ASCII characters",
                )
            })?;
        Ok(IdempotencyKey(Some(key.to_owned())))
    }
}
