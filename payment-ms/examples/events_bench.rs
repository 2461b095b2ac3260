//! Event bus benchmark, against a real nats-server. Run through `bench/events.sh` (see
//! docs/BENCHMARKS.md).
//!
//! 1. Ceiling: a plain async-nats JetStream publisher sends N messages of the size of a relayed
//!    event, each with a `Nats-Msg-Id`, in windows of the relay's batch (all sent, then all
//!    acks awaited), to a stream of its own.
//! 2. Relay throughput: N events are committed to the outbox with no relay running; a relay
//!    starts and the clock runs until every publication is recorded `published` (committed to
//!    acknowledged, and the acknowledgement written back).
//! 3. Relay latency: events are committed one at a time at a fixed rate while the relay runs;
//!    for each, its commit to its stream acknowledgement (`published_at - created_at`).
//! 4. Inbound: M events wait on a source stream; the consumer starts and the clock runs until
//!    the inbox has them all (each handled in its own transaction).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage, stream};
use payment_ms::bus::entities::event_publications;
use payment_ms::bus::relay::Relay;
use payment_ms::inbox::entities::inbox;
use payment_ms::platform::nats::NatsConfig;
use payment_ms::{Application, Config};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use shared::config::Env;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

mod support;

use support::{percentile, record_events};

struct Args {
    events: usize,
    inbound: usize,
    rate: u64,
    seconds: u64,
    database_url: Option<String>,
    nats_url: String,
}

fn args() -> Args {
    let mut args = Args {
        events: 20000,
        inbound: 5000,
        rate: 500,
        seconds: 10,
        database_url: None,
        nats_url: "nats://127.0.0.1:4222".to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--events" => args.events = value.parse().unwrap_or(args.events),
            "--inbound" => args.inbound = value.parse().unwrap_or(args.inbound),
            "--rate" => args.rate = value.parse().unwrap_or(args.rate),
            "--seconds" => args.seconds = value.parse().unwrap_or(args.seconds),
            "--database-url" => args.database_url = Some(value),
            "--nats-url" => args.nats_url = value,
            other => eprintln!("ignoring unknown flag {other}"),
        }
    }
    args
}

/// Publications not yet acknowledged (a count over the partial index of pending rows, cheap
/// enough to ask every few milliseconds while the relay works).
async fn pending(state: &payment_ms::AppState) -> anyhow::Result<u64> {
    Ok(event_publications::Entity::find()
        .filter(event_publications::Column::Status.eq("pending"))
        .count(&state.core.db)
        .await?)
}

/// The plain publisher: `n` messages of `size` bytes, in windows of `window`.
async fn ceiling(
    js: &jetstream::Context,
    subject: &str,
    n: usize,
    size: usize,
    window: usize,
) -> anyhow::Result<f64> {
    let body = bytes::Bytes::from(vec![b'x'; size]);
    let started = Instant::now();
    let mut sent = 0;
    while sent < n {
        let mut acks = Vec::with_capacity(window);
        for i in sent..(sent + window).min(n) {
            let message = PublishMessage::build()
                .payload(body.clone())
                .message_id(format!("raw-{i}"))
                .header("Content-Type", "application/cloudevents+json");
            acks.push(js.send_publish(subject.to_owned(), message).await?);
        }
        sent += acks.len();
        for ack in acks {
            ack.await?;
        }
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    shared::telemetry::init(false);
    let tag = format!("bench{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("events-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/bench.db?mode=rwc", dir.display()));
    let backend = if url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let stream_name = format!("{}_PAYMENTS", tag.to_uppercase());
    let prefix = format!("{tag}.payments.events");
    let source_stream = format!("{}_USERS", tag.to_uppercase());
    let inbound = format!("{source_stream}={tag}.users.events.>");
    let nats_env = [
        ("NATS_URL", args.nats_url.as_str()),
        ("NATS_STREAM", stream_name.as_str()),
        ("NATS_SUBJECT_PREFIX", prefix.as_str()),
        ("NATS_INBOUND", inbound.as_str()),
        ("NATS_RELAY_ENABLED", "false"),
        ("NATS_STREAM_MAX_AGE", "1h"),
    ];
    let env = Env::from_pairs(
        [
            ("APP_PROFILE", "dev"),
            ("DATABASE_URL", url.as_str()),
            ("PAYMENT_MS_ADDR", "127.0.0.1:0"),
            ("WEBHOOK_ENABLED", "false"),
            ("EXPIRY_SWEEP_INTERVAL", "1h"),
        ]
        .into_iter()
        .chain(nats_env),
    );
    let nats: NatsConfig = NatsConfig::from_source(&env)?.ok_or_else(|| anyhow::anyhow!("NATS"))?;
    let client = async_nats::connect(&args.nats_url).await?;
    let js = jetstream::new(client.clone());

    // 4's events wait on their stream before the service (and its consumer) starts.
    js.create_stream(stream::Config {
        name: source_stream.clone(),
        subjects: vec![format!("{tag}.users.events.>")],
        max_age: Duration::from_secs(3600),
        ..Default::default()
    })
    .await?;
    for chunk in (0..args.inbound).collect::<Vec<_>>().chunks(500) {
        let mut acks = Vec::new();
        for i in chunk {
            let event = serde_json::json!({"specversion": "1.0", "id": format!("up-{i}"), "source": "users",
                "type": "user.upgraded", "data": {"user_id": format!("u{i}"), "plan_code": "pro"}});
            acks.push(
                js.publish(
                    format!("{tag}.users.events.user.upgraded"),
                    serde_json::to_vec(&event)?.into(),
                )
                .await?,
            );
        }
        for ack in acks {
            ack.await?;
        }
    }

    let config = Config::from_source(&env)?;
    let app = Application::build(config).await?;
    let state = app.state().clone();
    let stop = CancellationToken::new();
    let started = Instant::now();
    let service = tokio::spawn(app.run_until(stop.clone()));
    let mut handled = 0;
    while started.elapsed() < Duration::from_secs(120) {
        handled = inbox::Entity::find().count(&state.core.db).await?;
        if handled as usize >= args.inbound {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let inbound_secs = started.elapsed().as_secs_f64();
    println!("database: {backend}, relay batch: {}", nats.relay.batch);
    println!(
        "inbound: {handled} events through the consumer and the inbox in {inbound_secs:.2} s = {:.0} events/s{}",
        handled as f64 / inbound_secs,
        if handled as usize >= args.inbound {
            ""
        } else {
            " (INCOMPLETE)"
        }
    );

    // 2. Relay throughput from a backlog.
    record_events(&state, args.events).await?;
    let sample = payment_ms::events::entities::events::Entity::find()
        .one(&state.core.db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no event"))?;
    let size = payment_ms::bus::cloudevent::envelope(&sample, "payment-ms")?.len();
    let due = Arc::new(Notify::new());
    let relay = Relay::new(
        client.clone(),
        state.core.db.clone(),
        state.core.clock.clone(),
        nats.stream.clone(),
        nats.relay.clone(),
        due.clone(),
    );
    relay.ensure_stream().await?;
    let relay_stop = CancellationToken::new();
    let started = Instant::now();
    tokio::spawn(relay.run(relay_stop.clone()));
    let mut left = args.events as u64;
    while started.elapsed() < Duration::from_secs(300) {
        left = pending(&state).await?;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let done = args.events as u64 - left;
    let relay_rate = done as f64 / started.elapsed().as_secs_f64();

    // 1. The ceiling, same size, same server.
    let raw_stream = format!("{}_RAW", tag.to_uppercase());
    js.create_stream(stream::Config {
        name: raw_stream.clone(),
        subjects: vec![format!("{tag}.raw")],
        max_age: Duration::from_secs(3600),
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await?;
    let raw_rate = ceiling(
        &js,
        &format!("{tag}.raw"),
        args.events,
        size,
        nats.relay.batch as usize,
    )
    .await?;
    println!(
        "throughput: relay {relay_rate:.0} events/s ({done} events of {size} bytes, committed before it started{}); \
         plain publisher {raw_rate:.0} msgs/s; ratio {:.2}",
        if done as usize >= args.events {
            ""
        } else {
            ", INCOMPLETE"
        },
        relay_rate / raw_rate
    );

    // 3. Latency at a fixed rate, the relay woken on commit.
    let phase_start = state.core.now();
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let mut tick = tokio::time::interval(interval);
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let mut sent = 0u64;
    while Instant::now() < until {
        tick.tick().await;
        record_events(&state, 1).await?;
        due.notify_one();
        sent += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while pending(&state).await? > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rows = event_publications::Entity::find()
        .filter(event_publications::Column::Status.eq("published"))
        .filter(event_publications::Column::CreatedAt.gte(phase_start))
        .all(&state.core.db)
        .await?;
    let mut latencies: Vec<Duration> = rows
        .iter()
        .filter_map(|p| {
            p.published_at
                .and_then(|at| (at - p.created_at).to_std().ok())
        })
        .collect();
    latencies.sort();
    println!(
        "latency at {} events/s for {} s ({sent} committed, {} acknowledged): commit to ack p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.rate,
        args.seconds,
        latencies.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );

    relay_stop.cancel();
    stop.cancel();
    // The service (and its consumers) stop before their streams go.
    service.await??;
    for name in [stream_name, source_stream, raw_stream] {
        js.delete_stream(name).await.ok();
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
