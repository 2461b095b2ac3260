//! RFC 9457 problem details: the one error body of both binaries.
//!
//! `{"type": "urn:problem:validation_failed", "title": "…", "status": 422, "detail": "…",
//!   "code": "validation_failed", "errors": [{"field": "items[0].quantity", "message": "…"}]}`
//!
//! `code` is the stable, machine-readable part; `detail` is for people and may change.

use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

pub const CONTENT_TYPE: &str = "application/problem+json";

/// A problem, boxed: it travels through every `Result` of both binaries, so the `Err` side stays
/// one pointer wide. Its fields are read through `Deref` (`problem.status`, `problem.code`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Problem(Box<ProblemDetails>);

/// RFC 9457 problem details, with a stable `code` and, for validation errors, each field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProblemDetails {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub code: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One invalid field of a request, named by its path in the body (`items[2].unit_price`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// `must be one of a, b, c`: the message for a value outside a fixed list.
pub fn one_of<'a>(allowed: impl IntoIterator<Item = &'a str>) -> String {
    format!(
        "must be one of {}",
        allowed.into_iter().collect::<Vec<_>>().join(", ")
    )
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem(Box::new(ProblemDetails {
            kind: format!("urn:problem:{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: Some(detail.into()),
            code: code.to_owned(),
            errors: Vec::new(),
        }))
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        let mut problem = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "The request has invalid fields",
            detail,
        );
        problem.0.errors = errors;
        problem
    }

    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, "Bad request", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed", detail)
    }

    /// `what` names the resource, e.g. `order ord_…`.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            format!("{what} does not exist"),
        )
    }

    pub fn conflict(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, "Conflict", detail)
    }

    pub fn unprocessable(code: &str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            "The request cannot be processed",
            detail,
        )
    }

    /// The opaque answer to anything unexpected: the cause goes to the log, never the client.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal server error",
            "An unexpected error occurred; it has been logged",
        )
    }

    pub fn service_unavailable(code: &str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            "Service unavailable",
            detail,
        )
    }

    /// A problem for a bare HTTP status that no handler described (an unknown route, a wrong
    /// method, a body over the limit, a timeout).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::NOT_FOUND => ("not_found", "No such route"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "This route does not accept that method",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "The request body is too large"),
            StatusCode::REQUEST_TIMEOUT => ("request_timeout", "The request took too long"),
            StatusCode::SERVICE_UNAVAILABLE => (
                "service_unavailable",
                "The service cannot answer now; retry later",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "Send the body as application/json",
            ),
            s if s.is_server_error() => ("internal_error", "An unexpected error occurred"),
            _ => ("http_error", "The request failed"),
        };
        Self::new(
            status,
            code,
            status.canonical_reason().unwrap_or("Error"),
            detail,
        )
    }
}

impl std::ops::Deref for Problem {
    type Target = ProblemDetails;

    fn deref(&self) -> &ProblemDetails {
        &self.0
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.code)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

/// What a 503 asks the client to wait before retrying, in seconds.
pub const RETRY_AFTER_UNAVAILABLE: &str = "2";

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut response = match serde_json::to_vec(&self) {
            Ok(body) => (
                status,
                [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
                body,
            )
                .into_response(),
            // Serializing a struct of strings cannot fail; answer with the status alone if it did.
            Err(_) => status.into_response(),
        };
        // Every 503 is one a client may retry, and says when.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_UNAVAILABLE),
            );
        }
        response
    }
}

impl From<JsonRejection> for Problem {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            // axum names the failing path (`items[0].quantity: invalid type …`).
            JsonRejection::JsonDataError(e) => {
                let text = e.body_text();
                let message = text
                    .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                    .unwrap_or(&text)
                    .to_owned();
                let (field, message) = match message.split_once(": ") {
                    Some((path, rest)) if !path.contains(' ') => (path.to_owned(), rest.to_owned()),
                    _ => ("body".to_owned(), message),
                };
                Problem::validation(vec![FieldError::new(field, message)])
            }
            JsonRejection::JsonSyntaxError(_) => {
                Problem::bad_request("malformed_json", "The body is not valid JSON")
            }
            JsonRejection::MissingJsonContentType(_) => {
                Problem::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            other => {
                let status = other.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::from_status(status)
                } else {
                    Problem::new(status, "bad_body", "Bad request", other.body_text())
                }
            }
        }
    }
}

/// Turns any error response that is not already problem+json or HTML (axum's bare 404/405,
/// the body limit's 413, a timed-out request's 503/504) into a problem body with the same
/// status, so clients see one error format everywhere.
pub fn problem_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let described = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(CONTENT_TYPE) || ct.starts_with("text/html"));
    if described {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let mut fresh = Problem::from_status(status).into_response();
    // Keep headers such as `Allow` on a 405 and `Retry-After`, but not the old body's framing.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    for (name, value) in parts.headers.iter() {
        fresh.headers_mut().insert(name.clone(), value.clone());
    }
    fresh
}

/// Fallback for unknown routes.
pub async fn not_found() -> Problem {
    Problem::from_status(StatusCode::NOT_FOUND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_rfc9457_with_code() {
        let p = Problem::validation(vec![FieldError::new("items[0].quantity", "must be ≥ 1")]);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "urn:problem:validation_failed");
        assert_eq!(v["status"], 422);
        assert_eq!(v["code"], "validation_failed");
        assert_eq!(v["errors"][0]["field"], "items[0].quantity");
        assert_eq!(v["detail"], "items[0].quantity: must be ≥ 1");
    }

    #[test]
    fn internal_errors_say_nothing_of_the_cause() {
        let v = serde_json::to_value(Problem::internal()).unwrap();
        assert_eq!(v["status"], 500);
        assert!(v.get("errors").is_none());
    }
}
