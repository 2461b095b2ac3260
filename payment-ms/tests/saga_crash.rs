//! A crash never leaves stock held or committed wrongly at an external inventory service: 500
//! checkouts, each a saga against a local fake of the service, are made through the API of a
//! real payment-ms process, half paid and half canceled, while payment-ms is killed with
//! SIGKILL in the middle and started again on the same database. Afterwards every saga has
//! ended, every paid order's reservation is committed exactly once, nothing else is committed,
//! no reservation is left active, and the fake's stock is what the paid orders took.
//!
//! Runs on SQLite, and on PostgreSQL as well when the tests were built with it.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use sea_orm::{Database, EntityTrait};
use serde_json::{Value, json};
use shared::internal::{INTERNAL_TOKEN_HEADER, USER_ID_HEADER, USER_ROLES_HEADER};
use testkit::helpers::{Backend, TestDb, free_port, payment_ms_command, wait_for_port};
use testkit::inventory::{FakeInventory, Status};

const TOKEN: &str = "saga-crash-internal-token";
const SAGAS: usize = 500;
const WIDGETS: i64 = 10_000;
const GADGETS: i64 = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_every_saga_ends_consistent_after_a_kill() {
    every_saga_ends_consistent(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs PostgreSQL: build and run the tests with TEST_DATABASE_URL set (scripts/test does)"
)]
async fn postgres_every_saga_ends_consistent_after_a_kill() {
    every_saga_ends_consistent(Backend::Postgres).await
}

struct Service(Child);

impl Service {
    fn start(database_url: &str, port: u16, inventory: &str, log: &Path) -> Service {
        let bin = env!("CARGO_BIN_EXE_payment-ms");
        let child = payment_ms_command(bin, database_url, port, TOKEN, log)
            .env("INVENTORY_URL", inventory)
            .env("INVENTORY_TIMEOUT", "2s")
            .env("INVENTORY_RETRY_MAX", "1s")
            .env("REQUEST_TIMEOUT", "3s")
            .spawn()
            .expect("payment-ms starts");
        Service(child)
    }

    /// SIGKILL: no shutdown; whatever was under way is cut off.
    fn kill(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends until an answer with one of `ok` arrives, through payment-ms being away (no answer, a
/// 5xx, a key still held by a request the kill cut off). Anything else fails the test.
async fn call<F>(mut send: F, ok: &[u16]) -> (u16, Value)
where
    F: FnMut() -> reqwest::RequestBuilder,
{
    for _ in 0..1200 {
        if let Ok(response) = send().send().await {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if ok.contains(&status) {
                return (status, body);
            }
            let passing = status >= 500 || body["code"] == "idempotency_key_in_use";
            assert!(passing, "answered {status}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("payment-ms never answered");
}

/// One order's life: created, checked out (a saga reserves at the fake), then paid (even `n`)
/// or canceled (odd `n`). Answers (order id, paid).
async fn one_saga(client: &reqwest::Client, base: &str, n: usize) -> (String, bool) {
    let user = format!("crash_{}", n % 40);
    let internal = |method: reqwest::Method, path: &str, who: &str, roles: &str| {
        client
            .request(method, format!("{base}/internal/v1{path}"))
            .header(INTERNAL_TOKEN_HEADER, TOKEN)
            .header(USER_ID_HEADER, who)
            .header(USER_ROLES_HEADER, roles)
    };
    let mut items =
        vec![json!({"sku": "widget", "name": "Widget", "quantity": 1, "unit_price": 500})];
    if n.is_multiple_of(3) {
        items.push(json!({"sku": "gadget", "name": "Gadget", "quantity": 2, "unit_price": 700}));
    }
    let order = json!({"user_id": user, "currency": "usd", "items": items});
    let (_, order) = call(
        || {
            internal(reqwest::Method::POST, "/orders", "shop", "service")
                .header("idempotency-key", format!("crash-order-{n}"))
                .json(&order)
        },
        &[201],
    )
    .await;
    let order_id = order["id"].as_str().expect("an order id").to_owned();
    let (_, payment) = call(
        || {
            internal(reqwest::Method::POST, &format!("/orders/{order_id}/checkout"), &user, "")
                .header("idempotency-key", format!("crash-checkout-{n}"))
                .json(&json!({"success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no"}))
        },
        &[201],
    )
    .await;
    let payment_id = payment["id"].as_str().expect("a payment id").to_owned();
    if n.is_multiple_of(2) {
        // The buyer pays on the mock's page (again after a kill: then it may say it is done).
        call(
            || {
                client
                    .post(format!("{base}/checkout/{payment_id}"))
                    .form(&[("action", "pay")])
            },
            &[303, 409],
        )
        .await;
        let (_, paid) = call(
            || {
                internal(
                    reqwest::Method::POST,
                    &format!("/payments/{payment_id}/verify"),
                    &user,
                    "",
                )
                .json(&json!({}))
            },
            &[200],
        )
        .await;
        assert_eq!(paid["status"], "succeeded", "{paid}");
        (order_id, true)
    } else {
        call(
            || {
                internal(
                    reqwest::Method::POST,
                    &format!("/orders/{order_id}/cancel"),
                    &user,
                    "",
                )
            },
            &[200, 409],
        )
        .await;
        (order_id, false)
    }
}

async fn every_saga_ends_consistent(backend: Backend) {
    let db = TestDb::create(backend).await;
    let fake = FakeInventory::start().await;
    fake.set_stock("widget", WIDGETS);
    fake.set_stock("gadget", GADGETS);
    let logs = tempfile::tempdir().expect("a log dir");
    let log = logs.path().join("payment-ms.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut service = Service::start(&db.url, port, &fake.url, &log);
    wait_for_port(port).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    // The sagas run 16 at a time; when a third are through, payment-ms is killed mid-stream and
    // started again at once.
    let finished = Arc::new(AtomicUsize::new(0));
    let work = {
        let (client, base, finished) = (client.clone(), base.clone(), finished.clone());
        tokio::spawn(async move {
            futures::stream::iter(0..SAGAS)
                .map(|n| {
                    let (client, base, finished) = (client.clone(), base.clone(), finished.clone());
                    async move {
                        let outcome = one_saga(&client, &base, n).await;
                        finished.fetch_add(1, Ordering::SeqCst);
                        (n, outcome)
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await
        })
    };
    while finished.load(Ordering::SeqCst) < SAGAS / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    service.kill();
    service = Service::start(&db.url, port, &fake.url, &log);
    let outcomes = work.await.expect("the sagas ran");
    let killed_at = SAGAS / 3;

    // Every saga ends: those the kill cut off are found by the worker once their lease or
    // their checkout's request is over.
    let conn = Database::connect(&db.url).await.expect("connect");
    let open = [
        "reserving",
        "awaiting_payment",
        "committing",
        "releasing",
        "refunding",
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let sagas = loop {
        let sagas = payment_ms::saga::entities::inventory_sagas::Entity::find()
            .all(&conn)
            .await
            .expect("sagas");
        if !sagas.iter().any(|s| open.contains(&s.state.as_str())) {
            break sagas;
        }
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            tokio::time::Instant::now() < deadline,
            "sagas still open: {:?}\npayment-ms said:\n{}",
            sagas
                .iter()
                .filter(|s| open.contains(&s.state.as_str()))
                .map(|s| (&s.payment_id, &s.state, &s.last_error))
                .collect::<Vec<_>>(),
            log_text
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let orders: HashMap<String, String> = payment_ms::orders::entities::orders::Entity::find()
        .all(&conn)
        .await
        .expect("orders")
        .into_iter()
        .map(|o| (o.id, o.status.as_str().to_owned()))
        .collect();
    conn.close().await.ok();

    // Each order is where its buyer left it.
    let mut paid_orders = HashSet::new();
    let mut gadgets_paid = 0;
    for (n, (order_id, paid)) in &outcomes {
        let status = orders[order_id].as_str();
        if *paid {
            assert_eq!(status, "paid", "order {n}");
            paid_orders.insert(order_id.clone());
            if n.is_multiple_of(3) {
                gadgets_paid += 2;
            }
        } else {
            assert_eq!(status, "canceled", "order {n}");
        }
    }
    assert_eq!(paid_orders.len(), SAGAS / 2);

    // The fake's ledger matches: one committed reservation per paid order, committed once;
    // nothing committed for a canceled one; nothing left active; every reservation is a
    // saga's; stock went down by what was paid, exactly.
    let ledger = fake.ledger();
    let saga_of: HashMap<String, (&String, &String)> = sagas
        .iter()
        .map(|s| (s.reservation_id.clone(), (&s.order_id, &s.state)))
        .collect();
    let mut committed_per_order: HashMap<&String, usize> = HashMap::new();
    for reservation in ledger.reservations.values() {
        let (order_id, state) = saga_of
            .get(&reservation.id)
            .unwrap_or_else(|| panic!("reservation {} belongs to no saga", reservation.id));
        assert_ne!(
            reservation.status,
            Status::Active,
            "{} left active",
            reservation.id
        );
        assert!(
            reservation.commits_applied <= 1,
            "{} committed twice",
            reservation.id
        );
        if reservation.status == Status::Committed {
            assert_eq!(state.as_str(), "done");
            *committed_per_order.entry(order_id).or_default() += 1;
        }
    }
    for order_id in &paid_orders {
        assert_eq!(
            committed_per_order.get(order_id),
            Some(&1),
            "order {order_id}"
        );
    }
    assert_eq!(
        committed_per_order.len(),
        paid_orders.len(),
        "only paid orders committed"
    );
    assert_eq!(ledger.on_hand["widget"], WIDGETS - paid_orders.len() as i64);
    assert_eq!(ledger.on_hand["gadget"], GADGETS - gadgets_paid);
    let cut_off = sagas.len().saturating_sub(SAGAS);
    eprintln!(
        "saga crash ({backend:?}): killed after {killed_at} of {SAGAS}; {} sagas ({cut_off} of checkouts the kill cut off, released), {} reservations, {} paid",
        sagas.len(),
        ledger.reservations.len(),
        paid_orders.len()
    );
    drop(service);
}
