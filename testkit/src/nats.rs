//! NATS for the tests: the server of `TEST_NATS_URL`, a private stream and subjects per test,
//! and a reader of a stream.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use payment_ms::platform::nats::NatsConfig;
use serde_json::Value;
use shared::config::Env;

/// The NATS server the tests use. A test that needs it is ignored when the tests were built
/// without `TEST_NATS_URL`; run all the same, it fails rather than pass without having run.
pub fn nats_url() -> String {
    match std::env::var("TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "TEST_NATS_URL is not set: this test needs a nats-server with JetStream \
             (scripts/test sets it when one answers on 127.0.0.1:4222)"
        ),
    }
}

/// Names no other test uses: `<tag>` prefixes the streams and subjects of one test.
#[derive(Debug, Clone)]
pub struct Names {
    pub tag: String,
}

impl Names {
    pub fn new() -> Names {
        Names {
            tag: format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        }
    }

    /// The stream payment-ms publishes to.
    pub fn stream(&self) -> String {
        format!("{}_PAYMENTS", self.tag.to_uppercase())
    }

    pub fn prefix(&self) -> String {
        format!("{}.payments.events", self.tag)
    }

    /// A source stream of another service (`users`, `orders`).
    pub fn source_stream(&self, domain: &str) -> String {
        format!("{}_{}", self.tag.to_uppercase(), domain.to_uppercase())
    }

    pub fn source_subject(&self, domain: &str, event_type: &str) -> String {
        format!("{}.{domain}.events.{event_type}", self.tag)
    }

    /// payment-ms's NATS settings for this test, with `extra` on top, reading `domains`.
    pub fn config(&self, url: &str, domains: &[&str], extra: &[(&str, &str)]) -> NatsConfig {
        let inbound = domains
            .iter()
            .map(|d| format!("{}={}.{d}.events.>", self.source_stream(d), self.tag))
            .collect::<Vec<_>>()
            .join(",");
        let (stream, prefix) = (self.stream(), self.prefix());
        let mut pairs = vec![
            ("NATS_URL", url),
            ("NATS_STREAM", stream.as_str()),
            ("NATS_SUBJECT_PREFIX", prefix.as_str()),
            ("NATS_INBOUND", inbound.as_str()),
            ("NATS_STREAM_MAX_AGE", "1h"),
            ("NATS_RELAY_POLL_INTERVAL", "100ms"),
            ("NATS_RELAY_RETRY_MAX", "500ms"),
            ("EVENTS_RETRY_BASE", "100ms"),
            ("EVENTS_RETRY_MAX", "400ms"),
        ];
        pairs.extend_from_slice(extra);
        NatsConfig::from_source(&Env::from_pairs(pairs))
            .expect("valid NATS settings")
            .expect("NATS configured")
    }

    /// Deletes this test's streams.
    pub async fn clean(&self, js: &jetstream::Context, domains: &[&str]) {
        js.delete_stream(self.stream()).await.ok();
        for d in domains {
            js.delete_stream(self.source_stream(d)).await.ok();
        }
    }
}

impl Default for Names {
    fn default() -> Self {
        Names::new()
    }
}

pub async fn jetstream(url: &str) -> jetstream::Context {
    let client = async_nats::connect(url)
        .await
        .expect("connect to TEST_NATS_URL");
    jetstream::new(client)
}

/// Creates another service's stream on `domain`'s subjects.
pub async fn source_stream(js: &jetstream::Context, names: &Names, domain: &str) {
    js.create_stream(stream::Config {
        name: names.source_stream(domain),
        subjects: vec![format!("{}.{domain}.events.>", names.tag)],
        max_age: Duration::from_secs(3600),
        ..Default::default()
    })
    .await
    .expect("create a source stream");
}

/// Publishes a CloudEvent on a source subject and awaits its ack.
pub async fn publish(js: &jetstream::Context, subject: String, event: &Value) {
    js.publish(subject, serde_json::to_vec(event).expect("JSON").into())
        .await
        .expect("publish")
        .await
        .expect("ack");
}

/// A message read from a stream: its subject, `Nats-Msg-Id` and body.
#[derive(Debug, Clone)]
pub struct Read {
    pub subject: String,
    pub msg_id: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
}

/// Reads the stream from its start until `want` messages arrived or `within` passed.
pub async fn read_stream(
    js: &jetstream::Context,
    stream: &str,
    want: usize,
    within: Duration,
) -> Vec<Read> {
    let deadline = tokio::time::Instant::now() + within;
    let stream = loop {
        match js.get_stream(stream).await {
            Ok(s) => break s,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("stream {stream}: {e}"),
        }
    };
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("an ephemeral consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut read = Vec::new();
    while read.len() < want {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, messages.next()).await {
            Ok(Some(Ok(m))) => {
                let header = |name: &str| {
                    m.headers
                        .as_ref()
                        .and_then(|h| h.get(name))
                        .map(|v| v.as_str().to_owned())
                };
                read.push(Read {
                    subject: m.subject.to_string(),
                    msg_id: header("Nats-Msg-Id"),
                    content_type: header("Content-Type"),
                    body: serde_json::from_slice(&m.payload).expect("a JSON body"),
                });
            }
            Ok(Some(Err(e))) => panic!("reading {e}"),
            Ok(None) | Err(_) => break,
        }
    }
    read
}
