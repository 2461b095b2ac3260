//! Nothing committed is lost on the way to JetStream, whatever fails: 2,000 events are made
//! through the API of a real payment-ms process while its private nats-server is stopped and
//! restarted twice and payment-ms itself is killed with SIGKILL once (then started again on the
//! same database). A consumer reading the stream must see every recorded event id at least
//! once, and its inbox-backed handler must apply each exactly once.
//!
//! Runs on SQLite, and on PostgreSQL as well when the tests were built with it.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt;
use sea_orm::{Database, EntityTrait};
use serde_json::{Value, json};
use shared::internal::{INTERNAL_TOKEN_HEADER, USER_ID_HEADER, USER_ROLES_HEADER};
use testkit::helpers::{Backend, TestDb, free_port, payment_ms_command, wait_for_port};

const TOKEN: &str = "chaos-internal-token";
/// Orders created; each is also checked out, so twice as many events.
const ORDERS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(nats_tests),
    ignore = "needs nats-server: build and run the tests with TEST_NATS_URL set (scripts/test does)"
)]
async fn sqlite_nothing_is_lost_through_outages_and_a_kill() {
    nothing_is_lost(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(nats_tests, postgres_tests)),
    ignore = "needs nats-server and PostgreSQL: TEST_NATS_URL and TEST_DATABASE_URL (scripts/test sets both)"
)]
async fn postgres_nothing_is_lost_through_outages_and_a_kill() {
    nothing_is_lost(Backend::Postgres).await
}

/// A nats-server of this test's own, on a fixed port and store, so it can be stopped and
/// started again with what it had.
struct Nats {
    port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl Nats {
    fn new() -> Nats {
        Nats {
            port: free_port(),
            store: tempfile::tempdir().expect("a store"),
            child: None,
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on PATH (the chaos test starts its own)");
        self.child = Some(child);
        wait_for_port(self.port).await;
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A payment-ms process.
struct Service {
    child: Child,
}

fn start_service(database_url: &str, port: u16, nats: &str, log: &Path) -> Service {
    let bin = env!("CARGO_BIN_EXE_payment-ms");
    let child = payment_ms_command(bin, database_url, port, TOKEN, log)
        .env("NATS_URL", nats)
        .env("NATS_STREAM", "CHAOS_PAYMENTS")
        .env("NATS_SUBJECT_PREFIX", "chaos.payments.events")
        .env("NATS_INBOUND", "")
        .env("NATS_RELAY_POLL_INTERVAL", "200ms")
        .env("NATS_RELAY_RETRY_MAX", "1s")
        .env("NATS_PUBLISH_TIMEOUT", "1s")
        .env("NATS_RELAY_LEASE", "5s")
        .spawn()
        .expect("payment-ms starts");
    Service { child }
}

impl Service {
    fn kill(&mut self) {
        // SIGKILL: no shutdown, no flush; whatever was being published is cut off.
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Creates an order and checks it out, retrying while payment-ms is away.
async fn two_events(client: &reqwest::Client, base: &str, n: usize) {
    let user = format!("chaos_{}", n % 50);
    let order = json!({"user_id": user, "currency": "usd",
        "items": [{"sku": "s", "name": "S", "quantity": 1, "unit_price": 100 + n as i64}]});
    let key = format!("chaos-order-{n}");
    let order: Value = retry(|| {
        client
            .post(format!("{base}/internal/v1/orders"))
            .header(INTERNAL_TOKEN_HEADER, TOKEN)
            .header(USER_ID_HEADER, "shop")
            .header(USER_ROLES_HEADER, "service")
            .header("idempotency-key", key.clone())
            .json(&order)
            .send()
    })
    .await;
    let id = order["id"].as_str().expect("an order id").to_owned();
    let key = format!("chaos-checkout-{n}");
    retry(|| {
        client
            .post(format!("{base}/internal/v1/orders/{id}/checkout"))
            .header(INTERNAL_TOKEN_HEADER, TOKEN)
            .header(USER_ID_HEADER, user.clone())
            .header("idempotency-key", key.clone())
            .json(&json!({"success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no"}))
            .send()
    })
    .await;
}

async fn retry<F, Fut>(mut send: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    for _ in 0..600 {
        if let Ok(response) = send().await
            && response.status().is_success()
        {
            return response.json().await.expect("JSON");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("payment-ms never answered");
}

async fn nothing_is_lost(backend: Backend) {
    let db = TestDb::create(backend).await;
    let logs = tempfile::tempdir().expect("a log dir");
    let log = logs.path().join("payment-ms.log");
    let mut nats = Nats::new();
    nats.start().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut service = start_service(&db.url, port, &nats.url(), &log);
    wait_for_port(port).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");

    let stages = [
        (ORDERS / 5, "stop NATS"),
        (2 * ORDERS / 5, "start NATS"),
        (ORDERS / 2, "kill payment-ms"),
        (3 * ORDERS / 5, "stop NATS"),
        (4 * ORDERS / 5, "start NATS"),
    ];
    let mut made = 0;
    // Each outage lasts while a fifth of the events are made, and 3 seconds at least: long
    // enough for publish acks to time out and rows to be retried.
    let mut stopped_at = tokio::time::Instant::now();
    for (until, action) in stages.iter().copied().chain([(ORDERS, "")]) {
        futures::stream::iter(made..until)
            .for_each_concurrent(16, |n| two_events(&client, &base, n))
            .await;
        made = until;
        match action {
            "stop NATS" => {
                nats.stop();
                stopped_at = tokio::time::Instant::now();
            }
            "start NATS" => {
                tokio::time::sleep_until(stopped_at + Duration::from_secs(3)).await;
                nats.start().await
            }
            "kill payment-ms" => {
                service.kill();
                service = start_service(&db.url, port, &nats.url(), &log);
                wait_for_port(port).await;
            }
            _ => {}
        }
    }

    // Every event recorded, read from the stream by a consumer with an inbox.
    let recorded = recorded_ids(&db.url).await;
    assert!(
        recorded.len() >= 2 * ORDERS,
        "{} events recorded",
        recorded.len()
    );
    let js = jetstream::new(
        async_nats::connect(nats.url())
            .await
            .expect("connect to NATS"),
    );
    let stream = js.get_stream("CHAOS_PAYMENTS").await.expect("the stream");
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("chaos-reader".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("a consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut inbox: HashSet<String> = HashSet::new();
    let mut applied: HashMap<String, u32> = HashMap::new();
    let mut deliveries = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !recorded.iter().all(|id| inbox.contains(id)) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = match tokio::time::timeout(left, messages.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => panic!("reading the stream: {e}"),
            _ => break,
        };
        deliveries += 1;
        let body: Value = serde_json::from_slice(&message.payload).expect("a CloudEvent");
        let id = body["id"].as_str().expect("an id").to_owned();
        // The handler: applied only when its id is new to the inbox.
        if inbox.insert(id.clone()) {
            *applied.entry(id).or_default() += 1;
        }
        message.ack_with(AckKind::Ack).await.expect("ack");
    }
    let missing: Vec<&String> = recorded.iter().filter(|id| !inbox.contains(*id)).collect();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        missing.is_empty(),
        "{} of {} events never reached the stream (e.g. {:?}); payment-ms said:\n{}",
        missing.len(),
        recorded.len(),
        missing.first(),
        log_text
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(applied.values().all(|&n| n == 1));
    assert_eq!(applied.len(), recorded.len(), "nothing but recorded events");
    // The outages were felt: events committed while NATS was down waited for it.
    let waited = waited_over(&db.url, Duration::from_secs(2)).await;
    assert!(
        waited > 0,
        "no event waited for NATS: the outages were not felt"
    );
    eprintln!(
        "chaos ({backend:?}): {waited} events waited over 2 s for NATS, {} events recorded, {deliveries} deliveries read, {} applied once each",
        recorded.len(),
        applied.len()
    );
    drop(service);
}

/// The ids of every event in the outbox.
async fn recorded_ids(url: &str) -> HashSet<String> {
    let db = Database::connect(url).await.expect("connect");
    let ids = payment_ms::events::entities::events::Entity::find()
        .all(&db)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.id)
        .collect();
    db.close().await.ok();
    ids
}

/// How many events waited longer than `limit` from their commit to their ack.
async fn waited_over(url: &str, limit: Duration) -> usize {
    let db = Database::connect(url).await.expect("connect");
    let rows = payment_ms::bus::entities::event_publications::Entity::find()
        .all(&db)
        .await
        .expect("publications");
    db.close().await.ok();
    rows.iter()
        .filter_map(|p| p.published_at.map(|at| at - p.created_at))
        .filter(|waited| waited.to_std().is_ok_and(|w| w > limit))
        .count()
}
