//! What schemathesis found the API doing that its document does not say, or that a caller
//! would not expect: each mended here with its test.

use serde_json::{Value, json};

use testkit::helpers::{Backend, TestApp, TestDb, problem};

testkit::db_tests!(
    a_provider_without_webhooks_has_no_webhook_endpoint,
    a_rotation_body_may_be_null,
    replicas_sweeping_together_count_what_each_expired,
    urls_cursors_and_filters_are_what_the_document_says,
);

async fn a_provider_without_webhooks_has_no_webhook_endpoint(backend: Backend) {
    let app = TestApp::spawn(backend).await;
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
    let app = TestApp::spawn(backend).await;
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
    let db = TestDb::create(backend).await;
    let url = db.url.clone();
    let app = TestApp::spawn_on(
        db,
        |c| c.payment_ttl = std::time::Duration::from_millis(1),
        |_| {},
    )
    .await;
    const PAYMENTS: usize = 8;
    for _ in 0..PAYMENTS {
        app.order_and_payment("alice").await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let env = testkit::helpers::test_env(&url);
    let mut config = payment_ms::Config::from_source(&env).unwrap();
    config.addr = "127.0.0.1:0".parse().unwrap();
    let other = payment_ms::Application::build(config).await.unwrap();
    let at = app.ms.core.now();
    let (a, b) = tokio::join!(
        payment_ms::jobs::expire_due(&app.ms, at, 100),
        payment_ms::jobs::expire_due(other.state(), at, 100)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.payments + b.payments, PAYMENTS, "{a:?} {b:?}");
}

/// The document's patterns are the API's own: a URL a generated client could not send is
/// refused, what it can send is taken; a cursor is the last item's id; the filter lists are
/// bounded as documented.
async fn urls_cursors_and_filters_are_what_the_document_says(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let order = app.create_order("alice").await;
    let path = format!("/api/v1/orders/{}/checkout", order["id"].as_str().unwrap());
    let alice = app.token("alice", &[]);
    for bad in [
        "HTTPS://shop.example/paid",
        "https://[::1]/paid",
        "https://shop.example:65536/paid",
        "https://user:pw@shop.example/paid",
        "https://café.example/paid",
        "https://10.0.0.256/paid",
    ] {
        let body = json!({"success_url": bad, "cancel_url": "https://shop.example/cart"});
        let response = app.post(&path, &alice, &body, None).await;
        assert_eq!(response.status(), 422, "{bad}");
        assert_eq!(problem(response).await["errors"][0]["field"], "success_url");
    }
    let body = json!({
        "success_url": "https://xn--caf-dma.example:8443/paid?x=1#top",
        "cancel_url": "http://192.0.2.10/cart",
    });
    assert_eq!(app.post(&path, &alice, &body, None).await.status(), 201);

    // A cursor is the id of the previous page's last item (the base64 form given before
    // is still taken).
    for _ in 0..2 {
        app.create_order("alice").await;
    }
    let token = app.service_token();
    let first: Value = app
        .get("/api/v1/orders?limit=2", &token)
        .await
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(cursor, first["data"][1]["id"].as_str().unwrap());
    let next: Value = app
        .get(&format!("/api/v1/orders?limit=2&cursor={cursor}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["data"].as_array().unwrap().len(), 1);
    use base64::Engine;
    let legacy = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&cursor);
    let again: Value = app
        .get(&format!("/api/v1/orders?limit=2&cursor={legacy}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["data"], next["data"]);

    let filters: Vec<&str> = std::iter::repeat_n("order.*", 101).collect();
    let response = app
        .post(
            "/api/v1/partners",
            &app.admin_token(),
            &json!({"name": "p", "url": "http://127.0.0.1:9/h", "event_types": filters}),
            None,
        )
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(problem(response).await["errors"][0]["field"], "event_types");
}
