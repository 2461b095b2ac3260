//! `Idempotency-Key` for POSTs that create something.
//!
//! The first request with a key *claims* it (a committed `in_progress` row). Its work then
//! stores the response in the same transaction as the work itself, so a crash leaves either
//! both or neither. Meanwhile a second request with the key gets 409; once completed, the same
//! key and body replay the stored status and body, and a different body is a 422. A claim left
//! by a crashed request can be taken over once it is older than the lock timeout.

use std::future::Future;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, Set,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use shared::Problem;

use crate::clock::Clock;
use crate::platform::db::after;
use crate::platform::entities::idempotency_keys::{self, Column, Entity};
use crate::platform::http::error::{Error, Result};
use crate::platform::{Actor, BeforeCommit, Fault};

const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";

/// The right to run the work of one request under a key.
#[derive(Debug, Clone)]
pub struct Claim {
    user_id: String,
    key: String,
    locked_at: DateTime<Utc>,
}

enum Outcome {
    Proceed(Claim),
    Replay { status: u16, body: String },
}

/// What identifies "the same request": method, path and body. A JSON body is compared in a
/// canonical form (keys sorted, whitespace dropped), so a client re-encoding it still matches.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_vec(&v).ok())
        .unwrap_or_else(|| body.to_vec());
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update(b" ");
    hash.update(path.as_bytes());
    hash.update(b"\n");
    hash.update(&canonical);
    hex::encode(hash.finalize())
}

/// What the work of an idempotent request adds to its last transaction: storing its answer
/// under the claimed key (nothing when the request had no key).
pub struct Then {
    pub claim: Option<Claim>,
    status: StatusCode,
}

#[async_trait::async_trait]
impl<T: Serialize + Sync> BeforeCommit<T> for Then {
    async fn before_commit(&self, txn: &DatabaseTransaction, result: &T) -> Result<(), Fault> {
        let Some(claim) = &self.claim else {
            return Ok(());
        };
        let body = serde_json::to_string(result).map_err(|e| Fault::Internal(e.into()))?;
        claim
            .store(txn, self.status, body)
            .await
            .map_err(|e| match e {
                Error::Db(e) => Fault::Db(e),
                Error::Client(_) => Fault::Superseded,
                Error::Internal(e) => Fault::Internal(e),
            })
    }
}

impl Claim {
    /// Stores the response; call it inside the transaction of the work.
    pub async fn complete<C, T>(&self, txn: &C, status: StatusCode, body: &T) -> Result<()>
    where
        C: ConnectionTrait,
        T: Serialize,
    {
        let body = serde_json::to_string(body).map_err(|e| Error::Internal(e.into()))?;
        self.store(txn, status, body).await
    }

    async fn store<C: ConnectionTrait>(
        &self,
        txn: &C,
        status: StatusCode,
        body: String,
    ) -> Result<()> {
        let res = Entity::update_many()
            .col_expr(Column::State, COMPLETED.into())
            .col_expr(Column::ResponseStatus, i32::from(status.as_u16()).into())
            .col_expr(Column::ResponseBody, body.into())
            .filter(Column::UserId.eq(&self.user_id))
            .filter(Column::Key.eq(&self.key))
            .filter(Column::State.eq(IN_PROGRESS))
            .filter(Column::LockedAt.eq(self.locked_at))
            .exec(txn)
            .await?;
        if res.rows_affected == 0 {
            // Another request took the claim over (we ran past the lock timeout): its result
            // stands and ours must not commit.
            return Err(Problem::conflict(
                "idempotency_key_in_use",
                "This Idempotency-Key was taken over by a retry",
            )
            .into());
        }
        Ok(())
    }

    /// Gives the key up after a failure that a retry might not meet (a 5xx).
    async fn release(&self, db: &DatabaseConnection) -> Result<()> {
        Entity::delete_many()
            .filter(Column::UserId.eq(&self.user_id))
            .filter(Column::Key.eq(&self.key))
            .filter(Column::State.eq(IN_PROGRESS))
            .filter(Column::LockedAt.eq(self.locked_at))
            .exec(db)
            .await?;
        Ok(())
    }
}

async fn claim(
    db: &DatabaseConnection,
    clock: &dyn Clock,
    user_id: &str,
    key: &str,
    request_hash: &str,
    ttl: Duration,
    lock_timeout: Duration,
) -> Result<Outcome> {
    // Two passes at most: the second follows the removal of an expired record.
    for _ in 0..2 {
        let at = clock.now();
        let inserted = Entity::insert(idempotency_keys::ActiveModel {
            user_id: Set(user_id.to_owned()),
            key: Set(key.to_owned()),
            request_hash: Set(request_hash.to_owned()),
            state: Set(IN_PROGRESS.to_owned()),
            response_status: Set(None),
            response_body: Set(None),
            locked_at: Set(at),
            created_at: Set(at),
            expires_at: Set(after(at, ttl)),
        })
        .on_conflict(
            OnConflict::columns([Column::UserId, Column::Key])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
        if inserted == 1 {
            return Ok(Outcome::Proceed(Claim {
                user_id: user_id.to_owned(),
                key: key.to_owned(),
                locked_at: at,
            }));
        }
        let Some(existing) = Entity::find_by_id((user_id.to_owned(), key.to_owned()))
            .one(db)
            .await?
        else {
            continue; // released between our insert and this read: try again
        };
        if existing.expires_at <= at {
            Entity::delete_many()
                .filter(Column::UserId.eq(user_id))
                .filter(Column::Key.eq(key))
                .filter(Column::ExpiresAt.lte(at))
                .exec(db)
                .await?;
            continue;
        }
        if existing.request_hash != request_hash {
            return Err(Problem::unprocessable(
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request; use a new key",
            )
            .into());
        }
        if existing.state == COMPLETED {
            let status = existing
                .response_status
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(500);
            return Ok(Outcome::Replay {
                status,
                body: existing.response_body.unwrap_or_default(),
            });
        }
        if after(existing.locked_at, lock_timeout) <= at {
            // The request that claimed it died (its work rolled back with it): take it over.
            let res = Entity::update_many()
                .col_expr(Column::LockedAt, at.into())
                .filter(Column::UserId.eq(user_id))
                .filter(Column::Key.eq(key))
                .filter(Column::State.eq(IN_PROGRESS))
                .filter(Column::LockedAt.eq(existing.locked_at))
                .exec(db)
                .await?;
            if res.rows_affected == 1 {
                return Ok(Outcome::Proceed(Claim {
                    user_id: user_id.to_owned(),
                    key: key.to_owned(),
                    locked_at: at,
                }));
            }
        }
        return Err(Problem::conflict(
            "idempotency_key_in_use",
            "A request with this Idempotency-Key is still being processed; retry shortly",
        )
        .into());
    }
    Err(Problem::conflict(
        "idempotency_key_in_use",
        "This Idempotency-Key is changing hands; retry shortly",
    )
    .into())
}

/// Settings of one idempotent call.
pub struct Request<'a> {
    pub db: &'a DatabaseConnection,
    pub caller: &'a Actor,
    pub key: Option<String>,
    pub method: &'a str,
    pub path: &'a str,
    pub body: &'a [u8],
    pub ttl: Duration,
    pub lock_timeout: Duration,
    pub clock: &'a dyn Clock,
    /// The status of a success (201 for a creation).
    pub status: StatusCode,
}

/// Runs `work` at most once per key and answers with its response, or the stored one.
/// `work` receives what to run just before its last transaction commits ([`Then`]).
pub async fn run<T, F, Fut>(req: Request<'_>, work: F) -> Response
where
    T: Serialize,
    F: FnOnce(Then) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let then = |claim| Then {
        claim,
        status: req.status,
    };
    let Some(key) = req.key else {
        return respond(req.status, work(then(None)).await);
    };
    let hash = fingerprint(req.method, req.path, req.body);
    let claimed = match claim(
        req.db,
        req.clock,
        &req.caller.user_id,
        &key,
        &hash,
        req.ttl,
        req.lock_timeout,
    )
    .await
    {
        Ok(Outcome::Proceed(claim)) => claim,
        Ok(Outcome::Replay { status, body }) => return replay(status, body),
        Err(e) => return e.into_response(),
    };
    let result = work(then(Some(claimed.clone()))).await;
    if let Err(err) = &result {
        let problem = err.to_problem();
        let settled = if problem.status < 500 && problem.code != "idempotency_key_in_use" {
            // A client error is the answer to this request: replay it too.
            match serde_json::to_string(&problem) {
                Ok(body) => claimed.store(req.db, problem.status_code(), body).await,
                Err(e) => Err(Error::Internal(e.into())),
            }
        } else {
            claimed.release(req.db).await
        };
        if let Err(e) = settled {
            tracing::warn!(error = %e, "could not settle an idempotency key after a failure");
        }
    }
    respond(req.status, result)
}

fn respond<T: Serialize>(status: StatusCode, result: Result<T>) -> Response {
    match result.and_then(|v| serde_json::to_string(&v).map_err(|e| Error::Internal(e.into()))) {
        Ok(body) => json_response(status, body),
        Err(e) => e.into_response(),
    }
}

pub fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_success() {
        "application/json"
    } else {
        shared::problem::CONTENT_TYPE
    };
    (
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                shared::internal::names::IDEMPOTENT_REPLAYED,
                HeaderValue::from_static("true"),
            ),
        ],
        body,
    )
        .into_response()
}

/// Deletes records past their time; run by the periodic sweep.
pub async fn purge_expired(db: &DatabaseConnection, at: DateTime<Utc>) -> Result<u64> {
    let res = Entity::delete_many()
        .filter(Column::ExpiresAt.lte(at))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn fingerprints_ignore_json_formatting_but_not_content() {
        let a = fingerprint("POST", "/x", br#"{"a":1,"b":[1,2]}"#);
        let b = fingerprint("POST", "/x", b"{ \"b\": [1, 2],\n \"a\": 1 }");
        let c = fingerprint("POST", "/x", br#"{"a":2,"b":[1,2]}"#);
        let d = fingerprint("POST", "/y", br#"{"a":1,"b":[1,2]}"#);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
