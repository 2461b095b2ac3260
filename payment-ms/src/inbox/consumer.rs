//! The NATS door: one durable pull consumer per source stream (`NATS_INBOUND`), shared by
//! every replica (the server hands each message to one of them), explicit acks.
//!
//! A message is acknowledged once the inbox has it (handled now or before). A malformed one
//! goes to the dead letters at once. One whose handling failed is NAKed with a delay derived
//! from its delivery count (never a plain NAK: the server would redeliver at once), and after
//! `EVENTS_MAX_DELIVER` deliveries it goes to the dead letters, then is acknowledged. The
//! server's own `max_deliver` is unlimited, so no message is ever dropped unseen.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::service::{Door, Inbox, InboxError};
use super::store::{self, Burial};
use crate::platform::nats::{ConsumerConfig, Source};
use crate::platform::retry_delay;

/// Messages of one consumer handled at once.
const CONCURRENCY: usize = 16;

pub struct Consumers {
    pub inbox: Inbox,
    pub js: jetstream::Context,
    pub config: ConsumerConfig,
}

impl Consumers {
    pub fn new(client: async_nats::Client, inbox: Inbox, config: ConsumerConfig) -> Consumers {
        Consumers {
            inbox,
            js: jetstream::new(client),
            config,
        }
    }

    /// Consumes every source stream until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let tasks: Vec<_> = this
            .config
            .sources
            .iter()
            .cloned()
            .map(|source| tokio::spawn(this.clone().consume(source, shutdown.clone())))
            .collect();
        for task in tasks {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "an event consumer ended abnormally");
            }
        }
    }

    /// The durable consumer on `source`, created if missing and brought to our settings.
    pub async fn ensure(
        &self,
        source: &Source,
    ) -> anyhow::Result<jetstream::consumer::PullConsumer> {
        let stream = self
            .js
            .get_stream(&source.stream)
            .await
            .map_err(|e| anyhow::anyhow!("stream {}: {e}", source.stream))?;
        let config = pull::Config {
            durable_name: Some(self.config.durable.clone()),
            description: Some("payment-ms inbound events".to_owned()),
            filter_subject: source.subject.clone(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: self.config.ack_wait,
            max_deliver: -1,
            max_ack_pending: 1000,
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        };
        let mut consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(&self.config.durable, config.clone())
            .await
            .map_err(|e| {
                anyhow::anyhow!("consumer {} on {}: {e}", self.config.durable, source.stream)
            })?;
        let info = consumer.info().await?;
        if info.config.filter_subject != source.subject || info.config.ack_wait != config.ack_wait {
            // Creating a durable consumer again with new settings updates the fields the server
            // lets change; a refusal leaves the old one working, and says so.
            match stream.create_consumer(config).await {
                Ok(updated) => consumer = updated,
                Err(e) => tracing::warn!(error = %e, stream = %source.stream,
                    "the consumer's settings differ from the configured ones and could not be updated"),
            }
        }
        Ok(consumer)
    }

    async fn consume(self: Arc<Self>, source: Source, shutdown: CancellationToken) {
        let mut wait = Duration::from_millis(500);
        loop {
            let consumer = match self.ensure(&source).await {
                Ok(consumer) => consumer,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?wait, "event consumer not ready");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            wait = Duration::from_millis(500);
            tracing::info!(stream = %source.stream, subject = %source.subject, "consuming events");
            if let Err(e) = self.drain(&consumer, &shutdown).await {
                tracing::warn!(error = %e, stream = %source.stream, "event consumer interrupted");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            if shutdown.is_cancelled() {
                return;
            }
        }
    }

    /// Fetches and handles batches until `shutdown` or an error.
    async fn drain(
        &self,
        consumer: &jetstream::consumer::PullConsumer,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        loop {
            let batch = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                batch = consumer
                    .fetch()
                    .max_messages(self.config.batch)
                    .expires(Duration::from_secs(5))
                    .messages() => batch?,
            };
            // A fetch is short; a batch being handled finishes before shutdown completes.
            batch
                .for_each_concurrent(CONCURRENCY, |message| async move {
                    match message {
                        Ok(message) => self.handle(message).await,
                        Err(e) => tracing::warn!(error = %e, "fetching events"),
                    }
                })
                .await;
        }
    }

    /// Handles one message and acknowledges, NAKs with a delay, or buries it.
    async fn handle(&self, message: jetstream::Message) {
        let delivered = message
            .info()
            .map(|info| info.delivered.max(1))
            .unwrap_or(1);
        metrics::counter!("inbox_nats_deliveries_total").increment(1);
        if delivered > 1 {
            metrics::counter!("inbox_nats_redeliveries_total").increment(1);
        }
        let error = self.inbox.receive(&message.payload, Door::Nats).await.err();
        let ack = match error {
            None => AckKind::Ack,
            Some(e) if e.is_permanent() || delivered >= i64::from(self.config.max_deliver) => {
                match self.bury(&message, &e, delivered).await {
                    Ok(()) => AckKind::Ack,
                    Err(bury) => {
                        tracing::error!(error = %bury, "could not record a dead letter");
                        AckKind::Nak(Some(self.delay(delivered)))
                    }
                }
            }
            Some(e) => {
                let delay = self.delay(delivered);
                tracing::warn!(error = %e, subject = %message.subject, delivered, retry_in = ?delay,
                    "inbound event not handled; it will be redelivered");
                AckKind::Nak(Some(delay))
            }
        };
        if let Err(e) = message.ack_with(ack).await {
            // Redelivered after the ack wait; the inbox makes that harmless.
            tracing::warn!(error = %e, "could not acknowledge an event");
        }
    }

    fn delay(&self, delivered: i64) -> Duration {
        retry_delay(
            delivered.clamp(1, i64::from(u32::MAX)) as u32,
            self.config.retry_base,
            self.config.retry_max,
        )
    }

    async fn bury(
        &self,
        message: &jetstream::Message,
        error: &InboxError,
        delivered: i64,
    ) -> Result<(), sea_orm::DbErr> {
        let envelope: Option<serde_json::Value> = serde_json::from_slice(&message.payload).ok();
        let field = |name: &str| {
            envelope
                .as_ref()
                .and_then(|e| e.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let (source, id, event_type) = (field("source"), field("id"), field("type"));
        let at = self.inbox.core.now();
        let letter = store::bury(
            &self.inbox.core.db,
            Burial {
                source: source.as_deref(),
                message_id: id.as_deref(),
                event_type: event_type.as_deref(),
                door: Door::Nats.as_str(),
                nats_subject: Some(message.subject.as_str()),
                body: &message.payload,
                error: &error.to_string(),
                deliveries: delivered.clamp(0, i64::from(i32::MAX)) as i32,
            },
            at,
        )
        .await?;
        metrics::counter!("inbox_dead_letters_total").increment(1);
        tracing::warn!(dead_letter = %letter, error = %error, delivered, subject = %message.subject,
            "inbound event moved to the dead letters");
        Ok(())
    }
}
