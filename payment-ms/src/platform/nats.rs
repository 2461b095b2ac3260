//! NATS JetStream: its configuration, the connection, and its health.
//!
//! NATS is optional. Without `NATS_URL` nothing here runs: events are not relayed, and other
//! services post theirs to `POST /api/v1/events`. With it, the outbox is relayed to the
//! `PAYMENTS_EVENTS` stream and a durable pull consumer reads each configured source stream.
//! Neither ever blocks a request: the connection is made (and remade) in the background, and
//! what waits for it is the relay's and the consumers' own work.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use shared::config::{ConfigError, Env};

/// `NATS_*`: set when `NATS_URL` is.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// `NATS_URL`, e.g. `nats://127.0.0.1:4222` (may carry credentials: a secret).
    pub url: SecretString,
    /// `NATS_CLIENT_NAME`: how this service shows in the server's connection list.
    pub client_name: String,
    pub stream: StreamConfig,
    pub relay: RelayConfig,
    pub consumer: ConsumerConfig,
}

/// The stream this service publishes to, created or updated at start.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// `NATS_STREAM`: `PAYMENTS_EVENTS`.
    pub name: String,
    /// `NATS_SUBJECT_PREFIX`: `payments.events`; an event's subject is `<prefix>.<type>`.
    pub subject_prefix: String,
    /// `NATS_STREAM_MAX_AGE`: how long the stream keeps an event (`7d`).
    pub max_age: Duration,
    /// `NATS_STREAM_MAX_BYTES`: the most the stream keeps (1 GiB); the oldest go first.
    pub max_bytes: i64,
    /// `NATS_DUPLICATE_WINDOW`: how long the server drops a re-published event id (`2m`;
    /// at most the max age).
    pub duplicate_window: Duration,
    /// `NATS_STREAM_REPLICAS`: copies of the stream in a cluster (1 on a single server).
    pub replicas: usize,
}

/// The relay from the outbox to the stream.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// `NATS_RELAY_ENABLED`: whether this replica relays (every replica records publications).
    pub enabled: bool,
    /// `NATS_RELAY_BATCH`: events claimed and published (pipelined) at once.
    pub batch: u64,
    /// `NATS_RELAY_LEASE`: how long a claim holds events before another relay may take them.
    pub lease: Duration,
    /// `NATS_RELAY_POLL_INTERVAL`: how often it looks for other replicas' events and retries.
    pub poll_interval: Duration,
    /// `NATS_RELAY_RETRY_MAX`: the longest wait before retrying a failed publication.
    pub retry_max: Duration,
    /// `NATS_PUBLISH_TIMEOUT`: how long a publish ack is awaited.
    pub ack_timeout: Duration,
    /// `EVENTS_SOURCE`: the CloudEvents `source` of what this service publishes.
    pub source: String,
}

/// The durable consumer of other services' streams.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `NATS_CONSUMER`: the durable name every replica shares (`payment-ms`).
    pub durable: String,
    /// `NATS_INBOUND`: `STREAM=subject` pairs, comma-separated; one consumer each.
    pub sources: Vec<Source>,
    /// `EVENTS_MAX_DELIVER`: deliveries before a failing event goes to the dead letters.
    pub max_deliver: u32,
    /// `EVENTS_RETRY_BASE`: the delay before the second delivery; doubled each time after.
    pub retry_base: Duration,
    /// `EVENTS_RETRY_MAX`: the longest delay between deliveries.
    pub retry_max: Duration,
    /// `NATS_ACK_WAIT`: how long the server waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// `NATS_FETCH_BATCH`: messages fetched at once.
    pub batch: usize,
}

/// One source stream and the subject read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub stream: String,
    pub subject: String,
}

const DEFAULT_INBOUND: &str = "USERS_EVENTS=users.events.>,ORDERS_EVENTS=orders.events.>,\
                               WALLET_EVENTS=wallet.events.>,USAGE_EVENTS=usage.events.>";

impl NatsConfig {
    /// `None` when `NATS_URL` is unset (the embedded default).
    pub fn from_source(env: &Env) -> Result<Option<NatsConfig>, ConfigError> {
        let Some(url) = env.get("NATS_URL").filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        if url.split(',').any(|u| {
            let u = u.trim();
            !(u.starts_with("nats://") || u.starts_with("tls://") || !u.contains("://"))
        }) {
            return Err(ConfigError::invalid(
                "NATS_URL",
                "must be nats://host:port (or tls://), comma-separated for a cluster",
            ));
        }
        let stream = StreamConfig {
            name: name_token("NATS_STREAM", &env.string("NATS_STREAM", "PAYMENTS_EVENTS"))?,
            subject_prefix: subject(
                "NATS_SUBJECT_PREFIX",
                &env.string("NATS_SUBJECT_PREFIX", "payments.events"),
                false,
            )?,
            max_age: env.duration("NATS_STREAM_MAX_AGE", "7d")?,
            max_bytes: env.parse("NATS_STREAM_MAX_BYTES", "1073741824")?,
            duplicate_window: env.duration("NATS_DUPLICATE_WINDOW", "2m")?,
            replicas: env.parse("NATS_STREAM_REPLICAS", "1")?,
        };
        if stream.duplicate_window > stream.max_age {
            return Err(ConfigError::invalid(
                "NATS_DUPLICATE_WINDOW",
                "must not be longer than NATS_STREAM_MAX_AGE",
            ));
        }
        if stream.max_bytes < 1 {
            return Err(ConfigError::invalid(
                "NATS_STREAM_MAX_BYTES",
                "must be positive",
            ));
        }
        if !(1..=5).contains(&stream.replicas) {
            return Err(ConfigError::invalid(
                "NATS_STREAM_REPLICAS",
                "must be 1 to 5",
            ));
        }
        let relay = RelayConfig {
            enabled: env.parse("NATS_RELAY_ENABLED", "true")?,
            batch: positive(env.parse("NATS_RELAY_BATCH", "500")?, "NATS_RELAY_BATCH")?,
            lease: env.duration("NATS_RELAY_LEASE", "30s")?,
            poll_interval: env.duration("NATS_RELAY_POLL_INTERVAL", "1s")?,
            retry_max: env.duration("NATS_RELAY_RETRY_MAX", "10s")?,
            ack_timeout: env.duration("NATS_PUBLISH_TIMEOUT", "5s")?,
            source: env.string("EVENTS_SOURCE", "payment-ms"),
        };
        if relay.lease <= relay.ack_timeout {
            return Err(ConfigError::invalid(
                "NATS_RELAY_LEASE",
                "must be longer than NATS_PUBLISH_TIMEOUT",
            ));
        }
        let sources = env
            .string("NATS_INBOUND", DEFAULT_INBOUND)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|pair| {
                let (stream, subj) = pair.split_once('=').ok_or_else(|| {
                    ConfigError::invalid("NATS_INBOUND", format!("`{pair}`: write STREAM=subject"))
                })?;
                Ok(Source {
                    stream: name_token("NATS_INBOUND", stream.trim())?,
                    subject: subject("NATS_INBOUND", subj.trim(), true)?,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let consumer = ConsumerConfig {
            durable: name_token("NATS_CONSUMER", &env.string("NATS_CONSUMER", "payment-ms"))?,
            sources,
            max_deliver: positive(env.parse("EVENTS_MAX_DELIVER", "5")?, "EVENTS_MAX_DELIVER")?,
            retry_base: env.duration("EVENTS_RETRY_BASE", "5s")?,
            retry_max: env.duration("EVENTS_RETRY_MAX", "5m")?,
            ack_wait: env.duration("NATS_ACK_WAIT", "30s")?,
            batch: positive(env.parse("NATS_FETCH_BATCH", "64")?, "NATS_FETCH_BATCH")?,
        };
        Ok(Some(NatsConfig {
            url: SecretString::from(url.to_owned()),
            client_name: env.string("NATS_CLIENT_NAME", "payment-ms"),
            stream,
            relay,
            consumer,
        }))
    }
}

fn positive<T: PartialOrd + Default>(n: T, name: &'static str) -> Result<T, ConfigError> {
    if n > T::default() {
        Ok(n)
    } else {
        Err(ConfigError::invalid(name, "must be at least 1"))
    }
}

/// A stream or consumer name: letters, digits, `-` and `_`.
fn name_token(name: &'static str, value: &str) -> Result<String, ConfigError> {
    if value.is_empty()
        || value.len() > 64
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ConfigError::invalid(
            name,
            format!("`{value}`: use letters, digits, - and _ (at most 64)"),
        ));
    }
    Ok(value.to_owned())
}

/// A subject (`payments.events`), with wildcards where `wildcards`.
fn subject(name: &'static str, value: &str, wildcards: bool) -> Result<String, ConfigError> {
    let ok = !value.is_empty()
        && value.split('.').all(|token| {
            !token.is_empty()
                && (wildcards && (token == "*" || token == ">")
                    || token
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        });
    if !ok {
        return Err(ConfigError::invalid(
            name,
            format!("`{value}` is not a NATS subject"),
        ));
    }
    Ok(value.to_owned())
}

/// Connects in the background: the service starts while NATS is down, and the client
/// reconnects for ever after a loss.
pub async fn connect(config: &NatsConfig) -> anyhow::Result<async_nats::Client> {
    let client = async_nats::ConnectOptions::new()
        .name(&config.client_name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(config.relay.ack_timeout))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("NATS connected"),
                async_nats::Event::Disconnected => tracing::warn!("NATS disconnected"),
                other => tracing::info!(event = %other, "NATS"),
            }
        })
        .connect(config.url.expose_secret())
        .await?;
    Ok(client)
}

/// Whether the connection is up, for `/readyz`.
pub fn connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_is_off_without_a_url() {
        assert!(
            NatsConfig::from_source(&Env::from_pairs([]))
                .expect("valid")
                .is_none()
        );
    }

    #[test]
    fn defaults_follow_the_design() {
        let config =
            NatsConfig::from_source(&Env::from_pairs([("NATS_URL", "nats://127.0.0.1:4222")]))
                .expect("valid")
                .expect("configured");
        assert_eq!(config.stream.name, "PAYMENTS_EVENTS");
        assert_eq!(config.stream.subject_prefix, "payments.events");
        assert_eq!(config.consumer.sources.len(), 4);
        assert_eq!(
            config.consumer.sources[0],
            Source {
                stream: "USERS_EVENTS".into(),
                subject: "users.events.>".into()
            }
        );
    }

    #[test]
    fn bad_settings_name_their_variable() {
        for (name, value) in [
            ("NATS_URL", "http://x"),
            ("NATS_STREAM", "a.b"),
            ("NATS_SUBJECT_PREFIX", "a..b"),
            ("NATS_INBOUND", "USERS"),
            ("NATS_DUPLICATE_WINDOW", "30d"),
            ("EVENTS_MAX_DELIVER", "0"),
        ] {
            let mut pairs = vec![("NATS_URL", "nats://127.0.0.1:4222")];
            pairs.push((name, value));
            let err = NatsConfig::from_source(&Env::from_pairs(pairs)).expect_err(name);
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }
}
