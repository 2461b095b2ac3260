//! The one error type of payment-ms handlers and domain functions.
//!
//! A [`Problem`] is an answer meant for the client (a 404, a 422 naming a field); anything else
//! is internal: logged with its cause and answered with an opaque 500.

use axum::response::{IntoResponse, Response};
use sea_orm::DbErr;
use shared::Problem;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Client(Problem),
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::platform::Fault> for Error {
    fn from(fault: crate::platform::Fault) -> Self {
        match fault {
            crate::platform::Fault::Db(e) => Error::Db(e),
            crate::platform::Fault::Superseded => Problem::conflict(
                "idempotency_key_in_use",
                "This Idempotency-Key was taken over by a retry",
            )
            .into(),
            crate::platform::Fault::Internal(e) => Error::Internal(e),
        }
    }
}

impl From<Problem> for Error {
    fn from(problem: Problem) -> Self {
        Error::Client(problem)
    }
}

/// Marks a response answered 503 because the database could not be reached, so the request
/// middleware can have the database checked (see [`crate::platform::db::Outage`]).
#[derive(Debug, Clone, Copy)]
pub struct DatabaseUnavailable;

/// The answer while the database cannot be reached: a 503 a client may retry.
pub fn database_unavailable() -> Problem {
    Problem::service_unavailable(
        "database_unavailable",
        "The database cannot be reached; retry later",
    )
}

/// The answer while a service a request depends on (the account service, a payment provider
/// while an event is handled) does not answer: a 503 a client may retry.
pub fn dependency_unavailable(detail: String) -> Problem {
    Problem::service_unavailable("dependency_unavailable", detail)
}

impl Error {
    /// The problem a client sees for this error.
    pub fn to_problem(&self) -> Problem {
        match self {
            Error::Client(problem) => problem.clone(),
            Error::Db(e) if crate::platform::db::is_transient(e) => database_unavailable(),
            Error::Db(_) | Error::Internal(_) => Problem::internal(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::Client(problem) => problem.into_response(),
            Error::Db(e) if crate::platform::db::is_transient(&e) => {
                tracing::warn!(error = %e, "the database could not answer");
                let mut response = database_unavailable().into_response();
                response.extensions_mut().insert(DatabaseUnavailable);
                response
            }
            other => {
                tracing::error!(error = %other, "request failed");
                Problem::internal().into_response()
            }
        }
    }
}
