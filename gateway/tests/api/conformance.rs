//! What schemathesis found the API doing that its document does not say, or that a caller
//! would not expect: each mended here with its test.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, problem};

crate::db_tests!(
    a_provider_without_webhooks_has_no_webhook_endpoint,
    a_rotation_body_may_be_null,
    replicas_sweeping_together_count_what_each_expired,
);

async fn a_provider_without_webhooks_has_no_webhook_endpoint(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for provider in ["mock", "paypal"] {
        let response = app
            .client
            .post(app.url(&format!("/providers/{provider}/webhook")))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{provider}");
        assert_eq!(problem(response).await["code"], "not_found");
    }
}

async fn a_rotation_body_may_be_null(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let partner: Value = app
        .post(
            "/api/v1/partners",
            &app.admin_token(),
            &json!({"name": "p", "url": "http://127.0.0.1:9/h"}),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!(
        "/api/v1/partners/{}/rotate-secret",
        partner["id"].as_str().unwrap()
    );
    for body in ["null", "", "{}"] {
        let response = app
            .client
            .post(app.url(&path))
            .bearer_auth(app.admin_token())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "body {body:?}");
        let rotated: Value = response.json().await.unwrap();
        assert!(rotated["secret"].as_str().unwrap().starts_with("whsec_"));
    }
}

/// Two replicas expire the same due payments at once: each says how many it expired, and
/// together they say how many were.
async fn replicas_sweeping_together_count_what_each_expired(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let url = db.url.clone();
    let Some(app) = TestApp::spawn_on(
        db,
        |c| c.payment_ttl = std::time::Duration::from_millis(1),
        |_| {},
    )
    .await
    else {
        return;
    };
    const PAYMENTS: usize = 8;
    for _ in 0..PAYMENTS {
        app.order_and_payment("alice").await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let env = crate::helpers::test_env(&url);
    let mut config = payment_ms::Config::from_source(&env).unwrap();
    config.addr = "127.0.0.1:0".parse().unwrap();
    let other = payment_ms::Application::build(config).await.unwrap();
    let at = payment_ms::db::now();
    let (a, b) = tokio::join!(
        payment_ms::payments::expire_due(&app.ms, at, 100),
        payment_ms::payments::expire_due(other.state(), at, 100)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.payments + b.payments, PAYMENTS, "{a:?} {b:?}");
}
