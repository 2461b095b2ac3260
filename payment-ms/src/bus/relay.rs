//! The relay: publishes the pending publications to JetStream.
//!
//! At start it creates or updates the stream (retention `limits`, file storage, the configured
//! max age, bytes and duplicate window), retrying while NATS is down. Then, woken when events
//! commit and every poll interval, it claims a batch of due publications, publishes them all
//! (pipelined: every publish is sent before any ack is awaited), each with `Nats-Msg-Id` = the
//! event id, awaits the acks, and records each outcome: `published` with the stream sequence,
//! or due again after a delay that doubles with its attempts. At least once: a publish whose
//! ack was lost is published again, and the server drops it within the duplicate window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage, stream};
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::cloudevent;
use super::publications::{self, Claimed};
use crate::clock::Clock;
use crate::platform::nats::{RelayConfig, StreamConfig};
use crate::platform::retry_delay;

pub struct Relay {
    pub db: DatabaseConnection,
    pub clock: Arc<dyn Clock>,
    pub js: jetstream::Context,
    pub stream: StreamConfig,
    pub config: RelayConfig,
    /// Woken when a transaction with events commits on this replica.
    pub due: Arc<Notify>,
}

impl Relay {
    pub fn new(
        client: async_nats::Client,
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        stream: StreamConfig,
        config: RelayConfig,
        due: Arc<Notify>,
    ) -> Relay {
        let js = jetstream::ContextBuilder::new()
            .timeout(config.ack_timeout)
            .build(client);
        Relay {
            db,
            clock,
            js,
            stream,
            config,
            due,
        }
    }

    /// Creates the stream, or brings an existing one to the configured limits.
    pub async fn ensure_stream(&self) -> anyhow::Result<()> {
        let config = stream::Config {
            name: self.stream.name.clone(),
            subjects: vec![format!("{}.>", self.stream.subject_prefix)],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            max_age: self.stream.max_age,
            max_bytes: self.stream.max_bytes,
            duplicate_window: self.stream.duplicate_window,
            num_replicas: self.stream.replicas,
            discard: stream::DiscardPolicy::Old,
            description: Some("Events of the payment service (CloudEvents 1.0 JSON)".to_owned()),
            ..Default::default()
        };
        self.js.create_or_update_stream(config).await.map_err(|e| {
            anyhow::anyhow!("creating or updating stream {}: {e}", self.stream.name)
        })?;
        Ok(())
    }

    /// Relays until `shutdown`: the stream first, then every due publication.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut wait = Duration::from_millis(500);
        while let Err(e) = self.ensure_stream().await {
            tracing::warn!(error = %e, retry_in = ?wait, "NATS stream not ready; events wait in the outbox");
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(self.config.retry_max.max(Duration::from_secs(1)));
        }
        tracing::info!(stream = %self.stream.name, "relaying events to NATS JetStream");
        loop {
            loop {
                match self.round().await {
                    Ok(claimed) if claimed as u64 >= self.config.batch => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "event relay round failed");
                        break;
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.due.notified() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// Claims one batch of due publications, publishes it and records the outcomes. Answers
    /// how many it claimed.
    pub async fn round(&self) -> Result<usize, sea_orm::DbErr> {
        // While NATS is away, nothing is claimed: a publish would wait on the connection, the
        // claim's lease would run out, and another replica would take the same rows.
        if !crate::platform::nats::connected(&self.js.client()) {
            return Ok(0);
        }
        let at = self.clock.now();
        let started = Instant::now();
        let claimed =
            publications::claim(&self.db, at, self.config.lease, self.config.batch).await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let claim_took = started.elapsed();
        let outcomes = self.publish_all(&claimed).await;
        let publish_took = started.elapsed() - claim_took;
        let done = self.clock.now();
        let mut acked = Vec::with_capacity(claimed.len());
        let mut failures = Vec::new();
        for (claim, outcome) in claimed.iter().zip(outcomes) {
            match outcome {
                Ok(ack) => {
                    if ack.duplicate {
                        metrics::counter!("events_relay_duplicates_total").increment(1);
                    }
                    let waited = (done - claim.event.created_at).to_std().unwrap_or_default();
                    metrics::histogram!("events_relay_commit_to_ack_seconds")
                        .record(waited.as_secs_f64());
                    acked.push((claim.event.id.clone(), ack.sequence));
                }
                Err(error) => {
                    let delay = retry_delay(
                        claim.attempts.max(1) as u32,
                        Duration::from_secs(1),
                        self.config.retry_max,
                    );
                    failures.push((claim.event.id.clone(), delay, error));
                }
            }
        }
        metrics::counter!("events_relay_published_total").increment(acked.len() as u64);
        metrics::counter!("events_relay_errors_total").increment(failures.len() as u64);
        if let Some((id, delay, error)) = failures.first() {
            tracing::warn!(event_id = %id, retry_in = ?delay, error = %error,
                failed = failures.len(), "events not published; they stay pending");
        }
        publications::published(&self.db, &acked, done).await?;
        publications::failed(&self.db, &failures, done).await?;
        tracing::debug!(
            published = acked.len(),
            failed = failures.len(),
            claim_ms = claim_took.as_millis() as u64,
            publish_ms = publish_took.as_millis() as u64,
            took_ms = started.elapsed().as_millis() as u64,
            "relay round"
        );
        Ok(claimed.len())
    }

    /// Sends every publish, then awaits every ack.
    async fn publish_all(
        &self,
        claimed: &[Claimed],
    ) -> Vec<Result<jetstream::publish::PublishAck, String>> {
        let mut pending = Vec::with_capacity(claimed.len());
        for claim in claimed {
            let event = &claim.event;
            let sent = match cloudevent::envelope(event, &self.config.source) {
                Err(e) => Err(format!("encoding the event: {e}")),
                Ok(body) => {
                    let message = PublishMessage::build()
                        .payload(body.into())
                        .message_id(&event.id)
                        .header("Content-Type", cloudevent::CONTENT_TYPE);
                    let subject =
                        cloudevent::subject(&self.stream.subject_prefix, &event.event_type);
                    self.js
                        .send_publish(subject, message)
                        .await
                        .map_err(|e| e.to_string())
                }
            };
            pending.push(sent);
        }
        let mut outcomes = Vec::with_capacity(pending.len());
        for sent in pending {
            outcomes.push(match sent {
                Ok(ack) => ack.await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            });
        }
        outcomes
    }
}
