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

impl From<Problem> for Error {
    fn from(problem: Problem) -> Self {
        Error::Client(problem)
    }
}

impl Error {
    /// The problem a client sees for this error.
    pub fn to_problem(&self) -> Problem {
        match self {
            Error::Client(problem) => problem.clone(),
            Error::Db(_) | Error::Internal(_) => Problem::internal(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::Client(problem) => problem.into_response(),
            other => {
                tracing::error!(error = %other, "request failed");
                Problem::internal().into_response()
            }
        }
    }
}
