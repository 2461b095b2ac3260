//! Webhook delivery benchmark: a real payment-ms dispatcher sending to a minimal local
//! receiver. Run through `bench/webhooks.sh` (see docs/BENCHMARKS.md).
//!
//! 1. Throughput: N events are recorded with no worker running; a worker starts and the clock
//!    runs until the receiver has all N.
//! 2. Latency: events are committed one by one at a fixed rate while the worker runs; each one's
//!    commit-to-arrival time is measured.
//!
//! With `--black-hole`, a second partner receives every event too, and never answers (it
//! accepts the connection and reads the request): the figures are then those of the healthy
//! partner beside it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use payment_ms::webhooks::dispatcher::Dispatcher;
use payment_ms::{Application, Config};
use sea_orm::ActiveModelTrait;
use shared::config::Env;
use tokio_util::sync::CancellationToken;

mod support;

use support::{percentile, record_events};

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

struct Args {
    events: usize,
    rate: u64,
    seconds: u64,
    database_url: Option<String>,
    black_hole: bool,
}

fn args() -> Args {
    let mut args = Args {
        events: 5000,
        rate: 200,
        seconds: 10,
        database_url: None,
        black_hole: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--black-hole" {
            args.black_hole = true;
            continue;
        }
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--events" => args.events = value.parse().unwrap_or(args.events),
            "--rate" => args.rate = value.parse().unwrap_or(args.rate),
            "--seconds" => args.seconds = value.parse().unwrap_or(args.seconds),
            "--database-url" => args.database_url = Some(value),
            other => eprintln!("ignoring unknown flag {other}"),
        }
    }
    args
}

async fn receiver(arrivals: Arrivals) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap| {
            let arrivals = arrivals.clone();
            async move {
                if let (Some(id), Ok(mut seen)) = (
                    headers.get("webhook-id").and_then(|v| v.to_str().ok()),
                    arrivals.lock(),
                ) {
                    seen.entry(id.to_owned()).or_insert_with(Instant::now);
                }
                ""
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// A partner that never answers: it accepts every connection and reads what is sent, forever.
async fn black_hole() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut socket, &mut tokio::io::sink()).await;
            });
        }
    });
    Ok(url)
}

async fn add_partner(state: &payment_ms::AppState, name: &str, url: String) -> anyhow::Result<()> {
    let partner = payment_ms::webhooks::partners::new_partner(
        name,
        &url,
        &["*".to_owned()],
        state.core.now(),
    );
    payment_ms::webhooks::entities::partners::ActiveModel::from(partner)
        .insert(&state.core.db)
        .await?;
    Ok(())
}

async fn wait_for(arrivals: &Arrivals, n: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if arrivals.lock().map_or(0, |a| a.len()) >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// Waits until `n` deliveries are recorded as succeeded.
async fn wait_recorded(
    state: &payment_ms::AppState,
    n: usize,
    limit: Duration,
) -> anyhow::Result<bool> {
    use payment_ms::webhooks::entities::deliveries;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let done = deliveries::Entity::find()
            .filter(deliveries::Column::Status.eq(payment_ms::webhooks::status::SUCCEEDED))
            .count(&state.core.db)
            .await?;
        if done as usize >= n {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(false)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    // Logs as the service writes them (`RUST_LOG`; bench/webhooks.sh sets `warn`).
    shared::telemetry::init(false);
    let dir = std::env::temp_dir().join(format!("webhook-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/bench.db?mode=rwc", dir.display()));
    // The worker's settings may be tried out: `WEBHOOK_CONCURRENCY=64 bench/webhooks.sh`.
    let tuning: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| name.starts_with("WEBHOOK_") && name != "WEBHOOK_ENABLED")
        .collect();
    let env = Env::from_pairs(
        [
            ("APP_PROFILE", "dev"),
            ("DATABASE_URL", url.as_str()),
            ("PAYMENT_MS_ADDR", "127.0.0.1:0"),
            ("WEBHOOK_ENABLED", "false"),
            ("EXPIRY_SWEEP_INTERVAL", "1h"),
        ]
        .into_iter()
        .chain(tuning.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    );
    let config = Config::from_source(&env)?;
    let app = Application::build(config).await?;
    let state = app.state().clone();
    let stop = CancellationToken::new();
    tokio::spawn(app.run_until(stop.clone()));

    let arrivals: Arrivals = Arc::default();
    add_partner(&state, "bench", receiver(arrivals.clone()).await?).await?;
    if args.black_hole {
        add_partner(&state, "black hole", black_hole().await?).await?;
    }
    let backend = if url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    println!(
        "database: {backend}, concurrency: {} ({} per partner), partners: {}",
        state.config.webhooks.concurrency,
        state.config.webhooks.partner_concurrency,
        if args.black_hole {
            "one healthy and one that never answers (figures: the healthy one's)"
        } else {
            "one"
        }
    );

    // 1. Throughput from a backlog.
    record_events(&state, args.events).await?;
    let started = Instant::now();
    let worker = CancellationToken::new();
    tokio::spawn(Dispatcher::new(state.clone())?.run(worker.clone()));
    let complete = wait_for(&arrivals, args.events, Duration::from_secs(300)).await;
    // A delivery is done when its attempt is recorded, not when the request arrives.
    let recorded = complete && wait_recorded(&state, args.events, Duration::from_secs(60)).await?;
    let elapsed = started.elapsed();
    // When the first, the 10th-percentile and the median delivery arrived: the start-up share.
    let mut times: Vec<Duration> = arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .values()
        .map(|at| at.saturating_duration_since(started))
        .collect();
    times.sort();
    let ms = |p: f64| percentile(&times, p).as_secs_f64() * 1000.0;
    println!(
        "throughput: {} deliveries sent and recorded in {:.2} s = {:.0} deliveries/s{} (arrivals: first {:.0} ms, 10% {:.0} ms, 50% {:.0} ms, all {:.0} ms)",
        args.events,
        elapsed.as_secs_f64(),
        args.events as f64 / elapsed.as_secs_f64(),
        if recorded { "" } else { " (INCOMPLETE)" },
        ms(0.0),
        ms(0.1),
        ms(0.5),
        ms(1.0),
    );

    // 2. Commit-to-delivery latency at a fixed rate.
    arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clear();
    let total = (args.rate * args.seconds) as usize;
    let gap = Duration::from_secs_f64(1.0 / args.rate as f64);
    let mut committed = Vec::with_capacity(total);
    let mut tick = tokio::time::interval(gap);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for _ in 0..total {
        tick.tick().await;
        committed.extend(record_events(&state, 1).await?);
    }
    wait_for(&arrivals, total, Duration::from_secs(60)).await;
    let arrived = arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let mut latencies: Vec<Duration> = committed
        .iter()
        .filter_map(|(id, at)| {
            arrived
                .get(id)
                .map(|got| got.saturating_duration_since(*at))
        })
        .collect();
    latencies.sort();
    println!(
        "latency at {} events/s for {} s: {} of {} delivered, commit-to-delivery p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.rate,
        args.seconds,
        latencies.len(),
        total,
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );
    if std::env::var_os("BENCH_SLOWEST").is_some() {
        let phase = committed.first().map(|(_, at)| *at);
        let mut slow: Vec<(Duration, Duration)> = committed
            .iter()
            .filter_map(|(id, at)| {
                let took = arrived.get(id)?.saturating_duration_since(*at);
                Some((took, at.saturating_duration_since(phase?)))
            })
            .collect();
        slow.sort();
        for (took, at) in slow.iter().rev().take(25) {
            println!(
                "slow: committed at +{} ms, took {:.1} ms",
                at.as_millis(),
                took.as_secs_f64() * 1000.0
            );
        }
    }
    worker.cancel();
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = std::fs::remove_dir_all(&dir);
    // Timing is never judged, but a lost event is.
    anyhow::ensure!(
        recorded && latencies.len() == total,
        "some events were not delivered"
    );
    Ok(())
}
