//! Order numbers people can read out: 1,000 orders created at once get 1,000 distinct,
//! consecutive numbers of the year, and an invoice's order is numbered like any other.

use std::collections::BTreeSet;

use futures::future::join_all;
use serde_json::Value;

use testkit::db_tests;
use testkit::helpers::{Backend, TestApp, order_body};

db_tests!(concurrent_orders_get_consecutive_numbers);

async fn concurrent_orders_get_consecutive_numbers(backend: Backend) {
    const ORDERS: usize = 1000;
    let app = TestApp::spawn_with(
        backend,
        |_| {},
        |g| {
            g.rate_per_trusted.per_second = 0;
            g.rate_per_address.per_second = 0;
        },
    )
    .await;
    let token = app.service_token();
    let bodies: Vec<Value> = (0..ORDERS)
        .map(|i| order_body(&format!("user-{i}")))
        .collect();
    // As a client does: a 503 (the database busy with the other 999) is sent again with the
    // same key; a creation that failed gave its number back.
    let answers = join_all(bodies.iter().enumerate().map(|(i, body)| {
        let (app, token) = (&app, &token);
        async move {
            let key = format!("number-{i}");
            for _ in 0..50 {
                let answer = app.post("/api/v1/orders", token, body, Some(&key)).await;
                if answer.status() != 503 {
                    return answer;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            panic!("order {i}: still 503 after 50 tries");
        }
    }))
    .await;
    let mut numbers = BTreeSet::new();
    for answer in answers {
        assert_eq!(answer.status(), 201);
        let order: Value = answer.json().await.expect("order");
        // The year the order was created in, on payment-ms's clock.
        let year = order["created_at"].as_str().expect("created_at")[..4].to_owned();
        let number = order["number"].as_str().expect("a number").to_owned();
        let n: u64 = number
            .strip_prefix(&format!("ORD-{year}-"))
            .expect("ORD-<year>-")
            .parse()
            .expect("digits");
        assert_eq!(number.len(), format!("ORD-{year}-000000").len());
        numbers.insert(n);
    }
    // Distinct, and with no gap: exactly 1 to 1,000.
    assert_eq!(numbers.len(), ORDERS);
    assert_eq!(numbers.first(), Some(&1));
    assert_eq!(numbers.last(), Some(&(ORDERS as u64)));
    // Read back as created.
    let page = app
        .get_json("/api/v1/orders?limit=1", &app.service_token())
        .await;
    assert!(
        page["data"][0]["number"]
            .as_str()
            .is_some_and(|n| n.starts_with("ORD-"))
    );
}
