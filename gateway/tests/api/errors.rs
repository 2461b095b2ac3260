//! Every error is problem+json with the right status, including the ones no handler writes.

use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use testkit::helpers::{Backend, TestApp, problem};

testkit::db_tests!(
    framework_errors_are_problems_too,
    request_ids_are_kept_or_made,
    health_and_readiness,
);

async fn framework_errors_are_problems_too(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.service_token();

    let response = app
        .client
        .get(app.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(problem(response).await["code"], "not_found");

    let response = app
        .client
        .delete(app.url("/api/v1/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert!(response.headers().contains_key("allow"));
    assert_eq!(problem(response).await["code"], "method_not_allowed");

    let big = json!({"user_id": "alice", "currency": "usd", "items": [], "metadata": {"x": "a".repeat(70_000)}});
    let response = app.post("/api/v1/orders", &token, &big, None).await;
    assert_eq!(response.status(), 413);
    assert_eq!(problem(response).await["code"], "payload_too_large");

    let response = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"user_id\":")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(problem(response).await["code"], "malformed_json");

    let response = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&token)
        .body("user_id=alice")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    let response = app.get("/api/v1/orders/not-an-id", &token).await;
    assert_eq!(response.status(), 404);
    let response = app
        .get("/api/v1/orders/ord_..%2F..%2Fpayments", &token)
        .await;
    assert_eq!(response.status(), 404);
}

async fn request_ids_are_kept_or_made(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .get(app.url("/api/v1/orders"))
        .bearer_auth(app.service_token())
        .header("x-request-id", "req-from-client-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-from-client-42");
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    let made = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(made.len(), 36, "a UUID: {made}");
}

async fn health_and_readiness(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for base in [&app.gateway, &app.payment_ms] {
        let health: serde_json::Value = app
            .client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["status"], "ok");
        let ready = app
            .client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
    }
}

/// payment-ms not listening: 503, and the gateway is not ready.
#[tokio::test]
async fn an_unreachable_payment_ms_is_503() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        |_| {},
        |c| {
            c.payment_ms_url = format!("http://{addr}").parse().unwrap();
        },
    )
    .await;
    let response = app.get("/api/v1/orders", &app.service_token()).await;
    assert_eq!(response.status(), 503);
    assert_eq!(problem(response).await["code"], "upstream_unavailable");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    // Liveness does not depend on payment-ms.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// A gateway whose payment-ms accepts connections and reads requests but never answers.
async fn behind_a_silent_payment_ms(adjust_gateway: impl FnOnce(&mut gateway::Config)) -> TestApp {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = silent.accept().await {
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            held.push(socket);
        }
    });
    TestApp::spawn_with(
        Backend::Sqlite,
        |_| {},
        |c| {
            c.payment_ms_url = format!("http://{addr}").parse().unwrap();
            adjust_gateway(c);
        },
    )
    .await
}

/// payment-ms accepting but never answering: 504 within the upstream timeout.
#[tokio::test]
async fn a_silent_payment_ms_is_504() {
    let app = behind_a_silent_payment_ms(|c| c.upstream_timeout = Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let response = app.get("/api/v1/orders", &app.service_token()).await;
    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(problem(response).await["code"], "upstream_timeout");
}

/// A request over the gateway's own time limit (`REQUEST_TIMEOUT`, here shorter than the
/// upstream timeout) is answered 504 as a problem, with its request id, and counted (no other
/// test makes a 504 on this route).
#[tokio::test]
async fn a_request_over_its_time_limit_is_a_504_problem() {
    let app = behind_a_silent_payment_ms(|c| {
        c.upstream_timeout = Duration::from_secs(30);
        c.request_timeout = Duration::from_millis(300);
    })
    .await;
    let started = std::time::Instant::now();
    let response = app
        .client
        .get(app.url("/api/v1/payments"))
        .bearer_auth(app.service_token())
        .header("x-request-id", "slow-request-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(response.headers()["x-request-id"], "slow-request-7");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(problem(response).await["status"], 504);
    let metrics = app.metrics(&app.gateway).await;
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("http_requests_total")
                && line.contains(r#"service="gateway""#)
                && line.contains(r#"route="/api/v1/payments""#)
                && line.contains(r#"status="504""#)),
        "the timed-out request is counted: {metrics}"
    );
}
