//! The delivery worker: sends due deliveries, signed, and records each attempt.
//!
//! Claims are leases: a claimed delivery carries `locked_until`, and nobody else takes it before
//! then. On PostgreSQL the claim is `FOR UPDATE SKIP LOCKED`, so replicas never take the same
//! delivery at once; on SQLite the single writer serializes claims. A worker that dies leaves
//! its claims to expire, and another worker (or itself, restarted) sends them. The lease is
//! longer than an attempt can last, and each attempt number is recorded once (a unique index),
//! so no attempt is sent twice.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait,
    QueryFilter, Set, Statement,
};
use shared::signing;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::partners_api::{disable, signing_secrets};
use super::{body_of, status};
use crate::AppState;
use crate::db::{after, begin_write, is_unique_violation, now};
use crate::entities::{deliveries, delivery_attempts, events, partners};
use crate::error::{Error, Result};

/// How much of a partner's answer is kept with the attempt.
pub const EXCERPT_BYTES: usize = 1024;
/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
pub struct Dispatcher {
    state: AppState,
    client: reqwest::Client,
    lease: Duration,
}

/// A delivery this worker holds the lease of.
#[derive(Debug, Clone)]
struct Claimed {
    id: String,
    event_id: String,
    partner_id: String,
    attempts: i32,
    round_start: i32,
}

/// What one attempt came to.
enum Outcome {
    Answered {
        status: u16,
        excerpt: String,
        retry_after: Option<Duration>,
    },
    Failed(String),
}

impl Dispatcher {
    pub fn new(state: AppState) -> anyhow::Result<Dispatcher> {
        let config = &state.config.webhooks;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            // A redirect is a failure, never followed: it could lead anywhere.
            .redirect(reqwest::redirect::Policy::none())
            // The SSRF guard resolves every host, so the address checked is the one used.
            .dns_resolver(state.guard.clone())
            .user_agent(concat!(
                "payment-stack-webhooks/",
                env!("CARGO_PKG_VERSION")
            ))
            .pool_max_idle_per_host(config.concurrency)
            .build()?;
        Ok(Dispatcher {
            lease: config.timeout * 2 + Duration::from_secs(1),
            state,
            client,
        })
    }

    /// Sends until `shutdown`, keeping up to `WEBHOOK_CONCURRENCY` requests in flight; then
    /// lets those in flight finish.
    pub async fn run(self, shutdown: CancellationToken) {
        let config = &self.state.config.webhooks;
        let mut inflight = JoinSet::new();
        let mut tick = tokio::time::interval(config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            while inflight.try_join_next().is_some() {}
            let room = config.concurrency.saturating_sub(inflight.len());
            let mut claimed = 0;
            if room > 0 {
                match self.claim(room).await {
                    Ok(batch) => {
                        claimed = batch.len();
                        for delivery in batch {
                            let me = self.clone();
                            inflight.spawn(async move { me.deliver(delivery).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not claim deliveries"),
                }
            }
            if claimed == room && room > 0 {
                continue; // there may be more due
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
                _ = self.state.outbox.notified() => {}
                _ = tick.tick() => {}
            }
        }
        while inflight.join_next().await.is_some() {}
    }

    async fn claim(&self, limit: usize) -> Result<Vec<Claimed>, DbErr> {
        let db = &self.state.db;
        let backend = db.get_database_backend();
        let at = now();
        let sql = match backend {
            DatabaseBackend::Postgres => {
                "UPDATE deliveries SET locked_until = $1 WHERE id IN (\
                   SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $2 \
                   AND (locked_until IS NULL OR locked_until < $2) \
                   ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, event_id, partner_id, attempts, round_start"
            }
            _ => {
                "UPDATE deliveries SET locked_until = ? WHERE id IN (\
                   SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ? \
                   AND (locked_until IS NULL OR locked_until < ?) \
                   ORDER BY next_attempt_at LIMIT ?) \
                 RETURNING id, event_id, partner_id, attempts, round_start"
            }
        };
        let until = after(at, self.lease);
        let values: Vec<sea_orm::Value> = match backend {
            DatabaseBackend::Postgres => vec![until.into(), at.into(), (limit as i64).into()],
            _ => vec![until.into(), at.into(), at.into(), (limit as i64).into()],
        };
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Claimed {
                    id: row.try_get("", "id")?,
                    event_id: row.try_get("", "event_id")?,
                    partner_id: row.try_get("", "partner_id")?,
                    attempts: row.try_get("", "attempts")?,
                    round_start: row.try_get("", "round_start")?,
                })
            })
            .collect()
    }

    async fn deliver(&self, claimed: Claimed) {
        if let Err(e) = self.try_deliver(&claimed).await {
            // The lease runs out and the delivery is tried again.
            tracing::warn!(error = %e, delivery_id = %claimed.id, "delivery attempt not recorded");
        }
    }

    async fn try_deliver(&self, claimed: &Claimed) -> Result<()> {
        let db = &self.state.db;
        let partner = partners::Entity::find_by_id(&claimed.partner_id)
            .one(db)
            .await?;
        let Some(partner) = partner.filter(|p| p.active) else {
            return self.cancel(claimed).await;
        };
        let event = events::Entity::find_by_id(&claimed.event_id)
            .one(db)
            .await?
            .ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("event {} is gone", claimed.event_id))
            })?;
        let body = body_of(&event).map_err(|e| Error::Internal(e.into()))?;
        let started_at = now();
        let timestamp = started_at.timestamp();
        let secrets = signing_secrets(&partner, started_at);
        let secret_refs: Vec<_> = secrets.iter().collect();
        let signature = signing::signature_header(&secret_refs, &event.id, timestamp, &body);
        let clock = Instant::now();
        let outcome = self
            .send(&partner.url, &event.id, timestamp, &signature, body)
            .await;
        let latency_ms = i32::try_from(clock.elapsed().as_millis()).unwrap_or(i32::MAX);
        self.record(claimed, &partner, started_at, latency_ms, outcome)
            .await
    }

    async fn send(
        &self,
        url: &str,
        id: &str,
        timestamp: i64,
        signature: &str,
        body: Vec<u8>,
    ) -> Outcome {
        let parsed = match url::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return Outcome::Failed(format!("invalid URL: {e}")),
        };
        // reqwest does not resolve literal addresses, so the guard looks at them here.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal.filter(|ip| !self.state.guard.permits(*ip)) {
            return Outcome::Failed(format!("refused: {ip} is not a public address"));
        }
        let response = self
            .client
            .post(parsed)
            .header("content-type", "application/json")
            .header(signing::ID_HEADER, id)
            .header(signing::TIMESTAMP_HEADER, timestamp.to_string())
            .header(signing::SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(describe(&e)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                _ => break,
            }
        }
        excerpt.truncate(EXCERPT_BYTES);
        Outcome::Answered {
            status,
            excerpt: String::from_utf8_lossy(&excerpt).into_owned(),
            retry_after,
        }
    }

    async fn cancel(&self, claimed: &Claimed) -> Result<()> {
        deliveries::Entity::update_many()
            .col_expr(deliveries::Column::Status, status::CANCELED.into())
            .col_expr(
                deliveries::Column::LastError,
                Some("the partner is disabled".to_owned()).into(),
            )
            .col_expr(
                deliveries::Column::LockedUntil,
                Option::<DateTime<Utc>>::None.into(),
            )
            .col_expr(deliveries::Column::UpdatedAt, now().into())
            .filter(deliveries::Column::Id.eq(&claimed.id))
            .filter(deliveries::Column::Status.eq(status::PENDING))
            .exec(&self.state.db)
            .await?;
        Ok(())
    }

    /// The attempt and what follows from it, in one transaction.
    async fn record(
        &self,
        claimed: &Claimed,
        partner: &partners::Model,
        started_at: DateTime<Utc>,
        latency_ms: i32,
        outcome: Outcome,
    ) -> Result<()> {
        let config = &self.state.config.webhooks;
        let attempt = claimed.attempts + 1;
        let (status_code, excerpt, error, retry_after) = match outcome {
            Outcome::Answered {
                status,
                excerpt,
                retry_after,
            } => (Some(status), Some(excerpt), None, retry_after),
            Outcome::Failed(error) => (None, None, Some(error), None),
        };
        let at = now();
        let txn = begin_write(&self.state.db).await?;
        let inserted = delivery_attempts::ActiveModel {
            id: Set(shared::ids::new_id(shared::ids::DELIVERY_ATTEMPT)),
            delivery_id: Set(claimed.id.clone()),
            attempt: Set(attempt),
            started_at: Set(started_at),
            latency_ms: Set(latency_ms),
            status_code: Set(status_code.map(i32::from)),
            response_excerpt: Set(excerpt),
            error: Set(error.clone()),
        }
        .insert(&txn)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                tracing::warn!(delivery_id = %claimed.id, attempt, "attempt already recorded by another worker");
                return Ok(());
            }
            other => {
                other?;
            }
        }
        let last_error = error.clone().or_else(|| {
            status_code
                .filter(|s| !(200..300).contains(s))
                .map(|s| format!("answered {s}"))
        });
        let mut update = deliveries::Entity::update_many()
            .col_expr(deliveries::Column::Attempts, attempt.into())
            .col_expr(
                deliveries::Column::LastStatusCode,
                status_code.map(i32::from).into(),
            )
            .col_expr(deliveries::Column::LastError, last_error.clone().into())
            .col_expr(
                deliveries::Column::LockedUntil,
                Option::<DateTime<Utc>>::None.into(),
            )
            .col_expr(deliveries::Column::UpdatedAt, at.into());
        let round = attempt - claimed.round_start;
        let delay = usize::try_from(round - 1)
            .ok()
            .and_then(|i| config.retry_schedule.get(i))
            .copied();
        let mut disable_reason = None;
        let outcome = match (status_code, delay) {
            (Some(s), _) if (200..300).contains(&s) => {
                update = update
                    .col_expr(deliveries::Column::Status, status::SUCCEEDED.into())
                    .col_expr(deliveries::Column::CompletedAt, Some(at).into());
                if partner.consecutive_failures != 0 {
                    partners::Entity::update_many()
                        .col_expr(partners::Column::ConsecutiveFailures, 0.into())
                        .filter(partners::Column::Id.eq(&partner.id))
                        .exec(&txn)
                        .await?;
                }
                "succeeded"
            }
            (Some(410), _) => {
                update = update
                    .col_expr(deliveries::Column::Status, status::FAILED.into())
                    .col_expr(deliveries::Column::CompletedAt, Some(at).into());
                disable_reason = Some(format!("{} answered 410 Gone", partner.url));
                "gone"
            }
            (_, Some(delay)) => {
                let wait = jittered(delay, config.jitter_percent)
                    .max(retry_after.map_or(Duration::ZERO, |r| r.min(MAX_RETRY_AFTER)));
                update = update.col_expr(deliveries::Column::NextAttemptAt, after(at, wait).into());
                "retry"
            }
            (_, None) => {
                // Past the whole schedule: this event is lost to this partner until recovered.
                update = update
                    .col_expr(deliveries::Column::Status, status::FAILED.into())
                    .col_expr(deliveries::Column::CompletedAt, Some(at).into());
                partners::Entity::update_many()
                    .col_expr(
                        partners::Column::ConsecutiveFailures,
                        sea_orm::sea_query::Expr::col(partners::Column::ConsecutiveFailures).add(1),
                    )
                    .filter(partners::Column::Id.eq(&partner.id))
                    .exec(&txn)
                    .await?;
                let failures = partners::Entity::find_by_id(&partner.id)
                    .one(&txn)
                    .await?
                    .map_or(0, |p| p.consecutive_failures);
                if u32::try_from(failures).unwrap_or(0) >= config.disable_after {
                    disable_reason = Some(format!(
                        "{failures} events in a row failed past the whole retry schedule"
                    ));
                }
                "failed"
            }
        };
        let res = update
            .filter(deliveries::Column::Id.eq(&claimed.id))
            .filter(deliveries::Column::Attempts.eq(claimed.attempts))
            .filter(deliveries::Column::Status.eq(status::PENDING))
            .exec(&txn)
            .await?;
        if res.rows_affected == 0 {
            // The delivery changed under us (canceled, or recovered): record nothing.
            return Ok(());
        }
        if let Some(reason) = disable_reason.as_deref() {
            disable(&txn, partner, reason, at).await?;
        }
        metrics::counter!("webhook_attempts_total", "outcome" => outcome).increment(1);
        metrics::histogram!("webhook_attempt_duration_seconds")
            .record(f64::from(latency_ms) / 1000.0);
        tracing::info!(
            delivery_id = %claimed.id, event_id = %claimed.event_id, partner_id = %partner.id,
            attempt, status = status_code, latency_ms, error = last_error.as_deref(),
            "webhook attempt"
        );
        self.state.commit(txn).await
    }
}

/// `delay`, moved at random by up to `percent` of itself either way.
fn jittered(delay: Duration, percent: u32) -> Duration {
    if percent == 0 || delay.is_zero() {
        return delay;
    }
    let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    let spread = ms / 100 * u64::from(percent);
    let low = ms.saturating_sub(spread);
    let high = ms.saturating_add(spread);
    Duration::from_millis(rand::rng().random_range(low..=high))
}

/// `Retry-After`: seconds, or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = DateTime::parse_from_rfc2822(value.trim()).ok()?;
    (when.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

/// An error with its causes, for the attempt log (`connection refused`, `timed out`).
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_share() {
        let base = Duration::from_secs(100);
        for _ in 0..200 {
            let d = jittered(base, 10);
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
        assert_eq!(jittered(base, 0), base);
    }

    #[test]
    fn retry_after_takes_seconds_or_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        let soon = (Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let parsed = parse_retry_after(&soon).unwrap();
        assert!(parsed > Duration::from_secs(80) && parsed <= Duration::from_secs(90));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
