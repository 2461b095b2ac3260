//! Clients that give up mid-request (a disconnect, a client timeout) must never leave a
//! half-done write behind, nor a pooled database connection inside a transaction that later,
//! unrelated requests would then run in.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement};
use serde_json::Value;

use testkit::db_tests;
use testkit::helpers::{Backend, INTERNAL_TOKEN, TestApp, order_body};

db_tests!(abandoned_requests_leave_no_transaction_behind);

async fn create(
    app: &TestApp,
    client: &reqwest::Client,
    key: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{}/internal/v1/orders", app.payment_ms))
        .header("x-internal-token", INTERNAL_TOKEN)
        .header("x-user-id", "shop")
        .header("x-user-roles", "service")
        .header("Idempotency-Key", key)
        .json(&order_body("alice"))
        .send()
        .await
}

async fn abandoned_requests_leave_no_transaction_behind(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        // Few connections, so the same ones are reused by the requests that follow.
        |c| c.database_max_connections = 2,
        |_| {},
    )
    .await;
    // Give up after a few hundred microseconds: somewhere inside the work, at varied points.
    for round in 0..300u64 {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_micros(200 + (round * 37) % 3000))
            .build()
            .unwrap();
        let _ = create(&app, &client, &format!("abandoned-{round}")).await;
    }
    if backend == Backend::Postgres {
        // The abandoned requests' work runs to its end on the server (a backlog on two
        // connections, slower on a loaded machine); a transaction left behind would stay
        // idle in it for good, so wait for the backlog, not for a fixed time.
        let mut stuck = -1;
        for _ in 0..100 {
            let row = app
                .db
                .query_one_raw(Statement::from_string(
                    app.db.get_database_backend(),
                    "SELECT count(*) AS n FROM pg_stat_activity \
                     WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
                        .to_owned(),
                ))
                .await
                .unwrap()
                .unwrap();
            stuck = row.try_get::<i64>("", "n").unwrap();
            if stuck == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(stuck, 0, "a connection was left in a transaction");
    } else {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Every request that follows is whole: created, and its key replays the same order.
    let client = reqwest::Client::new();
    for i in 0..20 {
        let key = format!("after-{i}");
        let first = create(&app, &client, &key).await.unwrap();
        assert_eq!(first.status(), 201);
        let first: Value = first.json().await.unwrap();
        let again = create(&app, &client, &key).await.unwrap();
        assert_eq!(again.status(), 201, "the key's answer was not stored");
        assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    }
    // And what was abandoned is either whole or absent: no claim stays in progress.
    let in_progress = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT count(*) AS n FROM idempotency_keys WHERE state = 'in_progress'".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(in_progress.try_get::<i64>("", "n").unwrap(), 0);
}
