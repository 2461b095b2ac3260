//! The delivery worker: sends due deliveries, signed, and records each attempt.
//!
//! Claims are leases: a claimed delivery carries `locked_until`, and nobody else takes it before
//! then. On PostgreSQL the claim is `FOR UPDATE SKIP LOCKED`, so replicas never take the same
//! delivery at once; on SQLite the single writer serializes claims. A worker that dies leaves
//! its claims to expire, and another worker (or itself, restarted) sends them. The lease is
//! longer than an attempt can last, and each attempt number is recorded once (a unique index),
//! so no attempt is sent twice.
//!
//! The work is batched where a batch costs what one would: deliveries are claimed many at a
//! time, ahead of sending (see [`Dispatcher::run`]), their events and partners are read in one
//! query each, and the attempts that finished while the previous batch was being written are
//! recorded together, in one transaction of two statements (the deliveries' new states, then
//! the attempts). Each delivery's update stays conditional on the attempt count it was claimed
//! with, so a batch never overwrites what another worker or an operator did meanwhile.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, Statement,
    TransactionTrait, Value,
};
use shared::signing;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::partners_api::{disable, signing_secrets};
use super::{body_of, status};
use crate::AppState;
use crate::db::{after, begin_write, now};
use crate::entities::{deliveries, events, partners};
use crate::error::Result;

/// How much of a partner's answer is kept with the attempt.
pub const EXCERPT_BYTES: usize = 1024;
/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The most attempts recorded in one transaction (9 bound values each).
const RECORD_BATCH: usize = 256;

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

/// A claimed delivery with what sending it needs.
struct Job {
    claimed: Claimed,
    event: events::Model,
    partner: Arc<partners::Model>,
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

/// An attempt made, waiting to be recorded.
struct Sent {
    claimed: Claimed,
    partner: Arc<partners::Model>,
    started_at: DateTime<Utc>,
    latency_ms: i32,
    outcome: Outcome,
}

/// What an attempt does to its partner, beyond its own delivery.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Effect {
    Succeeded,
    Retry,
    Gone,
    Exhausted,
}

impl Effect {
    fn label(self) -> &'static str {
        match self {
            Effect::Succeeded => "succeeded",
            Effect::Retry => "retry",
            Effect::Gone => "gone",
            Effect::Exhausted => "failed",
        }
    }

    /// The delivery's status after the attempt.
    fn status(self) -> &'static str {
        match self {
            Effect::Succeeded => status::SUCCEEDED,
            Effect::Retry => status::PENDING,
            Effect::Gone | Effect::Exhausted => status::FAILED,
        }
    }
}

/// The rows one attempt writes.
struct Planned<'a> {
    sent: &'a Sent,
    attempt: i32,
    status_code: Option<i32>,
    excerpt: Option<String>,
    error: Option<String>,
    last_error: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    effect: Effect,
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
    /// lets those in flight finish and records them.
    ///
    /// Claiming runs ahead of sending: up to as many deliveries again as may be in flight are
    /// claimed and waiting, and the next claim is made while requests are out, so a request
    /// that ends is followed by the next at once rather than after a database round trip. A
    /// waiting delivery waits for one request at most, so an attempt still ends within its
    /// lease (two timeouts and a second).
    pub async fn run(self, shutdown: CancellationToken) {
        let config = &self.state.config.webhooks;
        let concurrency = config.concurrency.max(1);
        // Room for every attempt in flight and a batch being written: senders wait (and so
        // no more is claimed) when recording falls behind.
        let (sent_tx, sent_rx) = mpsc::channel(concurrency * 2);
        let recorder = tokio::spawn(self.clone().record_all(sent_rx));
        let mut inflight = JoinSet::new();
        let mut waiting: VecDeque<Job> = VecDeque::new();
        let mut claiming: Option<JoinHandle<(bool, Vec<Job>)>> = None;
        // Whether deliveries may be due that no claim has looked for yet: at start, after a
        // wake-up (new events, the poll), and when the last claim took all it asked for.
        let mut more_due = true;
        let mut tick = tokio::time::interval(config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A claim is a write; asking for a few at a time keeps it one per several deliveries.
        let low_water = (concurrency / 2).max(1);
        loop {
            while inflight.try_join_next().is_some() {}
            while inflight.len() < concurrency {
                let Some(job) = waiting.pop_front() else {
                    break;
                };
                let me = self.clone();
                let sent_tx = sent_tx.clone();
                inflight.spawn(async move {
                    let sent = me.deliver(job).await;
                    // Closed only once every sender has finished.
                    let _ = sent_tx.send(sent).await;
                });
            }
            let room = (2 * concurrency).saturating_sub(inflight.len() + waiting.len());
            let worth_it = room >= low_water || (inflight.is_empty() && room > 0);
            if claiming.is_none() && more_due && worth_it {
                // Set again by a wake-up while this claim runs, which may have missed it.
                more_due = false;
                let me = self.clone();
                claiming = Some(tokio::spawn(async move { me.claim_jobs(room).await }));
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
                claimed = async {
                    match claiming.as_mut() {
                        Some(handle) => handle.await,
                        None => std::future::pending().await,
                    }
                }, if claiming.is_some() => {
                    claiming = None;
                    match claimed {
                        Ok((all_asked, jobs)) => {
                            more_due |= all_asked;
                            waiting.extend(jobs);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "claiming deliveries failed");
                        }
                    }
                }
                _ = self.state.outbox.notified() => more_due = true,
                _ = tick.tick() => more_due = true,
            }
        }
        // What was claimed and not sent is given back at once rather than when its lease
        // runs out, so another replica can take it.
        if let Some(Ok((_, jobs))) = match claiming {
            Some(handle) => Some(handle.await),
            None => None,
        } {
            waiting.extend(jobs);
        }
        self.release(waiting.drain(..).map(|job| job.claimed.id).collect())
            .await;
        while inflight.join_next().await.is_some() {}
        drop(sent_tx);
        if let Err(e) = recorder.await {
            tracing::error!(error = %e, "the webhook recorder stopped");
        }
    }

    /// Claims up to `limit` due deliveries and reads what sending them needs; says whether it
    /// got all it asked for (then more may be due).
    async fn claim_jobs(self, limit: usize) -> (bool, Vec<Job>) {
        match self.claim(limit).await {
            Ok(batch) => {
                let all = batch.len() == limit;
                (all, self.prepare(batch).await)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not claim deliveries");
                (false, Vec::new())
            }
        }
    }

    /// Ends this worker's leases on deliveries it claimed and will not send.
    async fn release(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let released = deliveries::Entity::update_many()
            .col_expr(
                deliveries::Column::LockedUntil,
                Option::<DateTime<Utc>>::None.into(),
            )
            .filter(deliveries::Column::Id.is_in(ids))
            .filter(deliveries::Column::Status.eq(status::PENDING))
            .exec(&self.state.db)
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not release claimed deliveries; their leases will run out");
        }
    }

    async fn claim(&self, limit: usize) -> Result<Vec<Claimed>, DbErr> {
        let db = &self.state.db;
        let backend = db.get_database_backend();
        let at = now();
        let mut claim = Bound::new(backend, "UPDATE deliveries SET locked_until = ");
        claim.bind(after(at, self.lease).into());
        claim.sql(
            " WHERE id IN (SELECT id FROM deliveries WHERE status = 'pending' \
             AND next_attempt_at <= ",
        );
        claim.bind(at.into());
        claim.sql(" AND (locked_until IS NULL OR locked_until < ");
        claim.bind(at.into());
        claim.sql(") ORDER BY next_attempt_at LIMIT ");
        claim.bind((limit as i64).into());
        if backend == DatabaseBackend::Postgres {
            // SQLite's single writer makes the statement atomic without it.
            claim.sql(" FOR UPDATE SKIP LOCKED");
        }
        claim.sql(") RETURNING id, event_id, partner_id, attempts, round_start");
        let claim = claim.statement();
        let rows = if backend == DatabaseBackend::Postgres {
            // A lease need not survive a crash of the database: lost, it only lets the
            // delivery be claimed again, and the attempt it led to is recorded durably. So the
            // claim does not wait for its WAL to reach the disk. And the due deliveries are
            // read in the index's order, stopping at the limit: after a burst of events the
            // table's statistics lag, and the planner would otherwise read and sort every
            // pending delivery for each claim.
            let txn = db.begin().await?;
            txn.execute_unprepared(
                "SELECT set_config('synchronous_commit', 'off', true), \
                 set_config('enable_bitmapscan', 'off', true)",
            )
            .await?;
            let rows = txn.query_all_raw(claim).await?;
            txn.commit().await?;
            rows
        } else {
            db.query_all_raw(claim).await?
        };
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

    /// The events and partners of a claimed batch, read in one query each. A delivery whose
    /// partner is disabled is canceled; one that cannot be prepared keeps its lease, which
    /// runs out, and is tried again.
    async fn prepare(&self, batch: Vec<Claimed>) -> Vec<Job> {
        if batch.is_empty() {
            return Vec::new();
        }
        let (events, partners) = match self.load(&batch).await {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::warn!(error = %e, deliveries = batch.len(), "could not read the claimed deliveries' events");
                return Vec::new();
            }
        };
        let mut jobs = Vec::with_capacity(batch.len());
        let mut disabled = Vec::new();
        for claimed in batch {
            let Some(partner) = partners.get(&claimed.partner_id).filter(|p| p.active) else {
                disabled.push(claimed.id);
                continue;
            };
            let Some(event) = events.get(&claimed.event_id) else {
                tracing::error!(delivery_id = %claimed.id, event_id = %claimed.event_id, "the delivery's event is gone");
                continue;
            };
            jobs.push(Job {
                event: event.clone(),
                partner: partner.clone(),
                claimed,
            });
        }
        if let Err(e) = self.cancel(disabled).await {
            tracing::warn!(error = %e, "could not cancel the deliveries of a disabled partner");
        }
        jobs
    }

    #[allow(clippy::type_complexity)]
    async fn load(
        &self,
        batch: &[Claimed],
    ) -> Result<(
        HashMap<String, events::Model>,
        HashMap<String, Arc<partners::Model>>,
    )> {
        let db = &self.state.db;
        let event_ids: HashSet<&str> = batch.iter().map(|c| c.event_id.as_str()).collect();
        let partner_ids: HashSet<&str> = batch.iter().map(|c| c.partner_id.as_str()).collect();
        let events = events::Entity::find()
            .filter(events::Column::Id.is_in(event_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|e| (e.id.clone(), e))
            .collect();
        let partners = partners::Entity::find()
            .filter(partners::Column::Id.is_in(partner_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), Arc::new(p)))
            .collect();
        Ok((events, partners))
    }

    async fn deliver(&self, job: Job) -> Sent {
        let Job {
            claimed,
            event,
            partner,
        } = job;
        let started_at = now();
        let clock = Instant::now();
        let outcome = match body_of(&event) {
            Ok(body) => {
                let timestamp = started_at.timestamp();
                let secrets = signing_secrets(&partner, started_at);
                let secret_refs: Vec<_> = secrets.iter().collect();
                let signature =
                    signing::signature_header(&secret_refs, &event.id, timestamp, &body);
                self.send(&partner.url, &event.id, timestamp, &signature, body)
                    .await
            }
            Err(e) => Outcome::Failed(format!("the event could not be serialized: {e}")),
        };
        Sent {
            latency_ms: i32::try_from(clock.elapsed().as_millis()).unwrap_or(i32::MAX),
            claimed,
            partner,
            started_at,
            outcome,
        }
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

    /// Cancels claimed deliveries whose partner was disabled after they were claimed.
    async fn cancel(&self, ids: Vec<String>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
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
            .filter(deliveries::Column::Id.is_in(ids))
            .filter(deliveries::Column::Status.eq(status::PENDING))
            .exec(&self.state.db)
            .await?;
        Ok(())
    }

    /// Records attempts as they finish: whatever finished while the last batch was written
    /// is the next batch. A batch that cannot be written is retried one attempt at a time, so
    /// one bad row does not hold back the others; an attempt that still cannot be recorded
    /// keeps its lease, which runs out, and is sent again.
    async fn record_all(self, mut sent: mpsc::Receiver<Sent>) {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while sent.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            if let Err(e) = self.record(&batch).await {
                tracing::warn!(error = %e, attempts = batch.len(), "delivery attempts not recorded");
                if batch.len() > 1 {
                    for one in batch.chunks(1) {
                        if let Err(e) = self.record(one).await {
                            tracing::warn!(error = %e, delivery_id = %one[0].claimed.id, "delivery attempt not recorded");
                        }
                    }
                }
            }
            batch.clear();
        }
    }

    /// What an attempt makes of its delivery.
    fn plan<'a>(&self, sent: &'a Sent, at: DateTime<Utc>) -> Planned<'a> {
        let config = &self.state.config.webhooks;
        let claimed = &sent.claimed;
        let attempt = claimed.attempts + 1;
        let (status_code, excerpt, error, retry_after) = match &sent.outcome {
            Outcome::Answered {
                status,
                excerpt,
                retry_after,
            } => (Some(*status), Some(excerpt.clone()), None, *retry_after),
            Outcome::Failed(error) => (None, None, Some(error.clone()), None),
        };
        let last_error = error.clone().or_else(|| {
            status_code
                .filter(|s| !(200..300).contains(s))
                .map(|s| format!("answered {s}"))
        });
        let round = attempt - claimed.round_start;
        let delay = usize::try_from(round - 1)
            .ok()
            .and_then(|i| config.retry_schedule.get(i))
            .copied();
        let (effect, next_attempt_at) = match (status_code, delay) {
            (Some(s), _) if (200..300).contains(&s) => (Effect::Succeeded, None),
            (Some(410), _) => (Effect::Gone, None),
            (_, Some(delay)) => {
                let wait = jittered(delay, config.jitter_percent)
                    .max(retry_after.map_or(Duration::ZERO, |r| r.min(MAX_RETRY_AFTER)));
                (Effect::Retry, Some(after(at, wait)))
            }
            // Past the whole schedule: this event is lost to this partner until recovered.
            (_, None) => (Effect::Exhausted, None),
        };
        Planned {
            sent,
            attempt,
            status_code: status_code.map(i32::from),
            excerpt,
            error,
            last_error,
            next_attempt_at,
            completed_at: (effect != Effect::Retry).then_some(at),
            effect,
        }
    }

    /// A batch of attempts and what follows from them, in one transaction.
    async fn record(&self, batch: &[Sent]) -> Result<()> {
        let config = &self.state.config.webhooks;
        let at = now();
        let planned: Vec<Planned> = batch.iter().map(|sent| self.plan(sent, at)).collect();
        let backend = self.state.db.get_database_backend();
        let txn = begin_write(&self.state.db).await?;
        if backend == DatabaseBackend::Postgres {
            // Each delivery by its primary key: the planner would otherwise scan the table and
            // hash it against the batch when its statistics lag behind a burst of events.
            txn.execute_unprepared(
                "SELECT set_config('enable_hashjoin', 'off', true), \
                 set_config('enable_mergejoin', 'off', true)",
            )
            .await?;
        }
        // The deliveries first: an outcome applies only if its delivery was still where it
        // was claimed (not canceled, recovered or recorded by another worker meanwhile).
        let applied = returned_ids(&txn, update_deliveries(backend, &planned, at)).await?;
        let (recorded, late): (Vec<&Planned>, Vec<&Planned>) = planned
            .iter()
            .partition(|p| applied.contains(&p.sent.claimed.id));
        // An attempt whose delivery was canceled (its partner disabled) while it was in flight
        // still reached the partner: it goes in the attempt log, and the delivery counts it,
        // though it stays where it was moved. One that another worker recorded first (its
        // lease ran out) is left to that worker's record.
        let late: Vec<&Planned> = if late.is_empty() {
            late
        } else {
            let counted = returned_ids(&txn, count_late_attempts(backend, &late, at)).await?;
            late.into_iter()
                .filter(|p| counted.contains(&p.sent.claimed.id))
                .collect()
        };
        let logged: Vec<&Planned> = recorded.iter().chain(&late).copied().collect();
        if !logged.is_empty() {
            txn.execute_raw(insert_attempts(backend, &logged)).await?;
        }
        // Partners, in the order the attempts came: a success clears the failures counted
        // before it; an event lost past the schedule counts one, and enough disable the
        // partner; a 410 disables it at once.
        let mut failing: HashMap<&str, bool> = HashMap::new();
        let mut disabled_any = false;
        for p in &recorded {
            let partner = &p.sent.partner;
            let failing = failing
                .entry(partner.id.as_str())
                .or_insert(partner.consecutive_failures != 0);
            let disable_reason = match p.effect {
                Effect::Succeeded if *failing => {
                    partners::Entity::update_many()
                        .col_expr(partners::Column::ConsecutiveFailures, 0.into())
                        .filter(partners::Column::Id.eq(&partner.id))
                        .exec(&txn)
                        .await?;
                    *failing = false;
                    None
                }
                Effect::Gone => Some(format!("{} answered 410 Gone", partner.url)),
                Effect::Exhausted => {
                    partners::Entity::update_many()
                        .col_expr(
                            partners::Column::ConsecutiveFailures,
                            sea_orm::sea_query::Expr::col(partners::Column::ConsecutiveFailures)
                                .add(1),
                        )
                        .filter(partners::Column::Id.eq(&partner.id))
                        .exec(&txn)
                        .await?;
                    *failing = true;
                    let failures = partners::Entity::find_by_id(&partner.id)
                        .one(&txn)
                        .await?
                        .map_or(0, |p| p.consecutive_failures);
                    (u32::try_from(failures).unwrap_or(0) >= config.disable_after).then(|| {
                        format!("{failures} events in a row failed past the whole retry schedule")
                    })
                }
                Effect::Succeeded | Effect::Retry => None,
            };
            if let Some(reason) = disable_reason.as_deref() {
                disable(&txn, partner, reason, at).await?;
                disabled_any = true;
            }
        }
        txn.commit().await?;
        if disabled_any {
            // `partner.disabled` is an event to deliver. (Not `AppState::commit`, which wakes
            // the dispatcher after every batch and so would send it claiming for nothing.)
            self.state.outbox.notify_one();
        }
        for p in &logged {
            let sent = p.sent;
            metrics::counter!("webhook_attempts_total", "outcome" => p.effect.label()).increment(1);
            metrics::histogram!("webhook_attempt_duration_seconds")
                .record(f64::from(sent.latency_ms) / 1000.0);
            tracing::info!(
                delivery_id = %sent.claimed.id, event_id = %sent.claimed.event_id,
                partner_id = %sent.partner.id, attempt = p.attempt, status = p.status_code,
                latency_ms = sent.latency_ms, error = p.last_error.as_deref(),
                "webhook attempt"
            );
        }
        let skipped = batch.len() - logged.len();
        if skipped > 0 {
            tracing::warn!(
                skipped,
                "attempts not recorded: another worker recorded the same attempts first"
            );
        }
        Ok(())
    }
}

/// The ids a statement's `RETURNING id` gave.
async fn returned_ids(
    txn: &sea_orm::DatabaseTransaction,
    statement: Statement,
) -> Result<HashSet<String>> {
    Ok(txn
        .query_all_raw(statement)
        .await?
        .into_iter()
        .map(|row| row.try_get::<String>("", "id"))
        .collect::<Result<_, DbErr>>()?)
}

/// Placeholders and their values, in the order they appear in the text.
struct Bound {
    backend: DatabaseBackend,
    sql: String,
    values: Vec<Value>,
}

impl Bound {
    fn new(backend: DatabaseBackend, sql: &str) -> Bound {
        Bound {
            backend,
            sql: sql.to_owned(),
            values: Vec::new(),
        }
    }

    fn sql(&mut self, text: &str) {
        self.sql.push_str(text);
    }

    /// Appends `(…), (…), …`: one row of values for each item.
    fn rows<T>(&mut self, items: impl IntoIterator<Item = T>, values: impl Fn(T) -> Vec<Value>) {
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.sql(", ");
            }
            self.row(values(item));
        }
    }

    /// Appends `(?, ?, …)` for the values of one row.
    fn row(&mut self, values: Vec<Value>) {
        self.sql.push('(');
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.bind(value);
        }
        self.sql.push(')');
    }

    fn bind(&mut self, value: Value) {
        self.values.push(value);
        match self.backend {
            DatabaseBackend::Postgres => {
                self.sql.push('$');
                self.sql.push_str(&self.values.len().to_string());
            }
            _ => self.sql.push('?'),
        }
    }

    fn statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.sql, self.values)
    }
}

/// One statement moving every delivery of the batch, each only from the state it was claimed
/// in; it returns the ids it moved. The expected status is a value of the batch, not a
/// constant, so the database finds each delivery by its key rather than by scanning the
/// pending ones.
fn update_deliveries(
    backend: DatabaseBackend,
    planned: &[Planned],
    at: DateTime<Utc>,
) -> Statement {
    let mut q = Bound::new(
        backend,
        "WITH v (d_id, prev, was, att, st, code, err, next_at, done_at) AS (VALUES ",
    );
    q.rows(planned, |p| {
        vec![
            p.sent.claimed.id.clone().into(),
            p.sent.claimed.attempts.into(),
            status::PENDING.into(),
            p.attempt.into(),
            p.effect.status().into(),
            p.status_code.into(),
            p.last_error.clone().into(),
            p.next_attempt_at.into(),
            p.completed_at.into(),
        ]
    });
    q.sql(
        ") UPDATE deliveries SET status = v.st, attempts = v.att, last_status_code = v.code, \
         last_error = v.err, locked_until = NULL, \
         next_attempt_at = COALESCE(v.next_at, deliveries.next_attempt_at), \
         completed_at = v.done_at, updated_at = ",
    );
    q.bind(at.into());
    q.sql(
        " FROM v WHERE deliveries.id = v.d_id AND deliveries.attempts = v.prev \
         AND deliveries.status = v.was RETURNING deliveries.id",
    );
    q.statement()
}

/// One statement counting, on deliveries that left `pending` while their attempt was in flight
/// (canceled with their partner), the attempt that was made: its number, answer and error, and
/// the claim released; the status stays. A delivery whose count moved on (another worker
/// recorded this attempt) is left alone. It returns the ids it counted on.
fn count_late_attempts(
    backend: DatabaseBackend,
    late: &[&Planned],
    at: DateTime<Utc>,
) -> Statement {
    let mut q = Bound::new(backend, "WITH v (d_id, prev, att, code, err) AS (VALUES ");
    q.rows(late, |p| {
        vec![
            p.sent.claimed.id.clone().into(),
            p.sent.claimed.attempts.into(),
            p.attempt.into(),
            p.status_code.into(),
            p.last_error.clone().into(),
        ]
    });
    q.sql(
        ") UPDATE deliveries SET attempts = v.att, last_status_code = v.code, \
         last_error = v.err, locked_until = NULL, updated_at = ",
    );
    q.bind(at.into());
    q.sql(
        " FROM v WHERE deliveries.id = v.d_id AND deliveries.attempts = v.prev \
         AND deliveries.status <> ",
    );
    q.bind(status::PENDING.into());
    q.sql(" RETURNING deliveries.id");
    q.statement()
}

/// One statement recording the attempts; an attempt number already recorded (by a worker
/// whose lease ran out) is left as it is.
fn insert_attempts(backend: DatabaseBackend, recorded: &[&Planned]) -> Statement {
    let mut q = Bound::new(
        backend,
        "INSERT INTO delivery_attempts (id, delivery_id, attempt, started_at, latency_ms, \
         status_code, response_excerpt, error) VALUES ",
    );
    q.rows(recorded, |p| {
        vec![
            shared::ids::new_id(shared::ids::DELIVERY_ATTEMPT).into(),
            p.sent.claimed.id.clone().into(),
            p.attempt.into(),
            p.sent.started_at.into(),
            p.sent.latency_ms.into(),
            p.status_code.into(),
            p.excerpt.clone().into(),
            p.error.clone().into(),
        ]
    });
    q.sql(" ON CONFLICT (delivery_id, attempt) DO NOTHING");
    q.statement()
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
