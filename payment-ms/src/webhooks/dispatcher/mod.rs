//! The delivery worker: sends due deliveries, signed, and records each attempt.
//!
//! Claims are leases: a claimed delivery carries `locked_until`, and nobody else takes it before
//! then ([`queue`]). A worker that dies leaves its claims to expire, and another worker (or
//! itself, restarted) sends them. The lease is longer than an attempt can last, and each
//! attempt number is recorded once (a unique index), so no attempt is sent twice.
//!
//! Partners are isolated from each other: one partner has at most `WEBHOOK_PARTNER_CONCURRENCY`
//! requests in flight from this worker, and claims skip a partner at its cap, so a partner
//! that never answers holds that many sending slots and no more. A partner whose attempts keep
//! failing (no answer, 5xx, 429) is backed off: its deliveries are not claimed until the
//! back-off ends, and then one at a time until one is answered ([`schedule`]).
//!
//! The work is batched where a batch costs what one would: deliveries are claimed many at a
//! time, ahead of sending (see [`Dispatcher::run`]), their events and partners are read in one
//! query each, and the attempts that finished while the previous batch was being written are
//! recorded together ([`recorder`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use shared::signing;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::partners::signing_secrets;
use super::{body_of, status};
use crate::AppState;

use crate::platform::http::error::Result;
use crate::{events::entities::events, webhooks::entities::partners};

mod holdings;
pub mod queue;
pub mod recorder;
pub mod schedule;
pub mod sender;

use holdings::Holdings;
pub use sender::{EXCERPT_BYTES, MAX_RETRY_AFTER};

use queue::Claimed;
use recorder::Sent;
use sender::{Answer, Sender};

/// Claims of one delivery whose outcome was never recorded, after which it is stopped
/// (failed, with the reason) instead of being sent again: a failure to record must not turn
/// into sending an event forever.
pub const MAX_UNRECORDED: i32 = 3;

#[derive(Clone)]
pub struct Dispatcher {
    state: AppState,
    sender: Sender,
    lease: Duration,
    writes: WriteGate,
}

/// Takes the dispatcher's own writes (claims, releases, recorded batches) one at a time on
/// SQLite. SQLite has one writer; writers that meet there wait in its busy handler, which
/// sleeps in growing steps (up to 100 ms) while others take the lock: measured, a black-hole
/// partner's sends timing out together held the other partners' deliveries for 90 ms. Queued
/// here, each write starts when the last ends. PostgreSQL writes side by side: no gate.
#[derive(Clone, Default)]
pub struct WriteGate(Option<Arc<tokio::sync::Mutex<()>>>);

impl WriteGate {
    fn for_backend(backend: sea_orm::DatabaseBackend) -> WriteGate {
        WriteGate((backend == sea_orm::DatabaseBackend::Sqlite).then(Arc::default))
    }

    /// Waits for the gate (on SQLite), to be held while writing.
    pub async fn enter(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.0 {
            Some(gate) => Some(gate.lock().await),
            None => None,
        }
    }
}

/// A claimed delivery with what sending it needs.
struct Job {
    claimed: Claimed,
    claimed_at: Instant,
    event: events::Model,
    partner: Arc<partners::Model>,
}

impl Dispatcher {
    pub fn new(state: AppState) -> anyhow::Result<Dispatcher> {
        Ok(Dispatcher {
            lease: state.config.webhooks.timeout * 2 + Duration::from_secs(1),
            writes: WriteGate::for_backend(state.core.db.get_database_backend()),
            sender: Sender::new(&state)?,
            state,
        })
    }

    /// Sends until `shutdown`, keeping up to `WEBHOOK_CONCURRENCY` requests in flight, and
    /// `WEBHOOK_PARTNER_CONCURRENCY` to any one partner; then lets those in flight finish and
    /// records them.
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
        let recorder = tokio::spawn(crate::events::outbox::in_scope(recorder::record_all(
            self.state.clone(),
            self.writes.clone(),
            sent_rx,
        )));
        let mut inflight: JoinSet<String> = JoinSet::new();
        let mut waiting: VecDeque<Job> = VecDeque::new();
        let mut holdings = Holdings::default();
        let mut claiming: Option<JoinHandle<Claim>> = None;
        // Whether deliveries may be due that no claim has looked for yet: at start, after a
        // wake-up (new events, the poll), when the last claim took all it asked for, and when
        // a partner it had to leave out (at its room) sends one.
        let mut more_due = true;
        let mut left_out: HashSet<String> = HashSet::new();
        // A waiting delivery not sent by then would risk its lease: it is given back instead.
        let max_wait = config.timeout;
        let mut tick = tokio::time::interval(config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A claim is a write; asking for a few at a time keeps it one per several deliveries.
        let low_water = (concurrency / 2).max(1);
        loop {
            while let Some(done) = inflight.try_join_next() {
                if let Ok(partner_id) = done {
                    holdings.done(&partner_id, true);
                    more_due |=
                        left_out.contains(&partner_id) && holdings.worth_claiming(&partner_id);
                }
            }
            let mut stale = Vec::new();
            while inflight.len() < concurrency {
                let Some(i) = waiting
                    .iter()
                    .position(|job| holdings.may_send(&job.partner.id))
                else {
                    break;
                };
                let Some(job) = waiting.remove(i) else {
                    break;
                };
                if job.claimed_at.elapsed() > max_wait {
                    holdings.done(&job.partner.id, false);
                    stale.push(job.claimed.id);
                    continue;
                }
                holdings.sending(&job.partner.id);
                let me = self.clone();
                let sent_tx = sent_tx.clone();
                inflight.spawn(async move {
                    let sent = me.deliver(job).await;
                    let partner_id = sent.partner.id.clone();
                    // Closed only once every sender has finished.
                    let _ = sent_tx.send(sent).await;
                    partner_id
                });
            }
            if !stale.is_empty() {
                tracing::warn!(
                    deliveries = stale.len(),
                    "claimed deliveries waited too long for their partner; given back"
                );
                let me = self.clone();
                tokio::spawn(async move { me.release(stale).await });
            }
            let room = (2 * concurrency).saturating_sub(inflight.len() + waiting.len());
            let worth_it = room >= low_water || (inflight.is_empty() && room > 0);
            if claiming.is_none() && more_due && worth_it {
                // Set again by a wake-up while this claim runs, which may have missed it.
                more_due = false;
                let me = self.clone();
                let free = holdings.free();
                claiming = Some(tokio::spawn(async move { me.claim_jobs(room, free).await }));
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                    if let Ok(partner_id) = done {
                        holdings.done(&partner_id, true);
                        more_due |= left_out.contains(&partner_id)
                            && holdings.worth_claiming(&partner_id);
                    }
                }
                claimed = async {
                    match claiming.as_mut() {
                        Some(handle) => handle.await,
                        None => std::future::pending().await,
                    }
                }, if claiming.is_some() => {
                    claiming = None;
                    match claimed {
                        Ok(claim) => {
                            more_due |= claim.more_due;
                            left_out = claim.left_out;
                            for job in claim.jobs {
                                let room = schedule::room(config, job.partner.failing_attempts);
                                holdings.take(&job.partner, room);
                                waiting.push_back(job);
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "claiming deliveries failed");
                        }
                    }
                }
                _ = self.state.webhooks_due.notified() => more_due = true,
                _ = tick.tick() => more_due = true,
            }
        }
        // What was claimed and not sent is given back at once rather than when its lease
        // runs out, so another replica can take it.
        if let Some(Ok(claim)) = match claiming {
            Some(handle) => Some(handle.await),
            None => None,
        } {
            waiting.extend(claim.jobs);
        }
        self.release(waiting.drain(..).map(|job| job.claimed.id).collect())
            .await;
        while inflight.join_next().await.is_some() {}
        drop(sent_tx);
        if let Err(e) = recorder.await {
            tracing::error!(error = %e, "the webhook recorder stopped");
        }
    }

    /// Claims up to `limit` due deliveries of partners with room (`free`: what the partners
    /// this worker holds may still take; others may take twice their room), reads what sending
    /// them needs, and gives back at once what is over a partner's room (its room shrank).
    async fn claim_jobs(self, limit: usize, free: HashMap<String, usize>) -> Claim {
        let config = &self.state.config.webhooks;
        let quota = 2 * config.partner_concurrency;
        let free: Vec<(String, usize)> = free.into_iter().collect();
        let gate = self.writes.enter().await;
        let claimed = queue::claim(
            &self.state.core.db,
            self.state.core.now(),
            self.lease,
            limit,
            quota,
            &free,
        )
        .await;
        drop(gate);
        let batch = match claimed {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim deliveries");
                return Claim::default();
            }
        };
        // All it asked for: more may be due. All a partner may take: more of its deliveries
        // may be due, to claim once it has sent one.
        let more_due = batch.len() == limit;
        let mut left: HashMap<String, usize> = free.into_iter().collect();
        let mut taken: HashMap<&str, usize> = HashMap::new();
        for claimed in &batch {
            *taken.entry(&claimed.partner_id).or_default() += 1;
        }
        let mut left_out: HashSet<String> = left
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(id, _)| id.clone())
            .chain(
                taken
                    .iter()
                    .filter(|(id, n)| **n >= left.get(**id).copied().unwrap_or(quota))
                    .map(|(id, _)| (*id).to_owned()),
            )
            .collect();
        drop(taken);
        let jobs = self.prepare(batch).await;
        let mut over = Vec::new();
        let mut kept = Vec::with_capacity(jobs.len());
        for job in jobs {
            let room = schedule::room(config, job.partner.failing_attempts);
            let left = left.entry(job.partner.id.clone()).or_insert(2 * room);
            if *left == 0 {
                left_out.insert(job.partner.id.clone());
                over.push(job.claimed.id);
            } else {
                *left -= 1;
                kept.push(job);
            }
        }
        // A partner's deliveries over its room are given back rather than kept waiting: they
        // would wait for its slow requests, past their leases.
        self.release(over).await;
        Claim {
            more_due,
            left_out,
            jobs: kept,
        }
    }

    /// Gives back the leases of deliveries this worker claimed and will not send.
    async fn release(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let _gate = self.writes.enter().await;
        if let Err(e) = queue::release(&self.state.core.db, ids).await {
            tracing::warn!(error = %e, "could not release claimed deliveries; their leases will run out");
        }
    }

    /// The events and partners of a claimed batch, read in one query each. A delivery whose
    /// partner is disabled is canceled; one claimed too often without its outcome recorded is
    /// stopped; one that cannot be prepared keeps its lease, which runs out, and is tried
    /// again.
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
        let mut stopped = Vec::new();
        for claimed in batch {
            let Some(partner) = partners.get(&claimed.partner_id).filter(|p| p.active) else {
                disabled.push(claimed.id);
                continue;
            };
            if claimed.unrecorded_claims > MAX_UNRECORDED {
                tracing::error!(delivery_id = %claimed.id, claims = claimed.unrecorded_claims - 1,
                    "a delivery was sent repeatedly without its outcome being recorded; stopped");
                stopped.push(claimed.id);
                continue;
            }
            let Some(event) = events.get(&claimed.event_id) else {
                tracing::error!(delivery_id = %claimed.id, event_id = %claimed.event_id, "the delivery's event is gone");
                continue;
            };
            jobs.push(Job {
                claimed_at: Instant::now(),
                event: event.clone(),
                partner: partner.clone(),
                claimed,
            });
        }
        let at = self.state.core.now();
        let db = &self.state.core.db;
        let ended = [
            (
                disabled,
                status::CANCELED,
                "the partner is disabled".to_owned(),
            ),
            (
                stopped,
                status::FAILED,
                format!(
                    "stopped: the outcome of its last {MAX_UNRECORDED} attempts could not be \
                     recorded; see the logs, then recover it"
                ),
            ),
        ];
        for (ids, to, reason) in ended {
            if let Err(e) = queue::end_unsent(db, ids, to, &reason, at).await {
                tracing::warn!(error = %e, "could not end claimed deliveries: {reason}");
            }
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
        let db = &self.state.core.db;
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
            ..
        } = job;
        let started_at = self.state.core.now();
        let clock = Instant::now();
        let answer = match body_of(&event) {
            Ok(body) => {
                let timestamp = started_at.timestamp();
                let secrets = signing_secrets(&partner, started_at);
                let secret_refs: Vec<_> = secrets.iter().collect();
                let signature =
                    signing::signature_header(&secret_refs, &event.id, timestamp, &body);
                self.sender
                    .send(&partner.url, &event.id, timestamp, &signature, body)
                    .await
            }
            Err(e) => Answer::failed(format!("the event could not be serialized: {e}")),
        };
        Sent {
            latency_ms: i32::try_from(clock.elapsed().as_millis()).unwrap_or(i32::MAX),
            claimed,
            partner,
            started_at,
            answer,
        }
    }
}

/// What a claim brought.
#[derive(Default)]
struct Claim {
    /// It got all it asked for: more may be due.
    more_due: bool,
    /// The partners it left deliveries of (at their room), or took all it could of: when one
    /// of them has sent a delivery, claim again.
    left_out: HashSet<String>,
    jobs: Vec<Job>,
}
