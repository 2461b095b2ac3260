//! The account service: no order for a user who does not exist or was deleted. In-process by
//! default (a user exists until a `user.deleted` says otherwise); over HTTP with `ACCOUNTS_URL`
//! (retries of a failed lookup, a 503 when it stays down, its health in `/readyz`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use payment_ms::accounts::http::AccountsConfig;
use serde_json::{Value, json};
use testkit::db_tests;
use testkit::helpers::{Backend, TestApp, order_body, problem};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::inbox::cloud_event;

db_tests!(
    no_order_for_a_deleted_user,
    the_account_service_is_asked_and_retried
);

async fn post_event(app: &TestApp, event: &Value) -> reqwest::Response {
    app.post("/api/v1/events", &app.service_token(), event, None)
        .await
}

async fn no_order_for_a_deleted_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Anyone may be ordered for by default.
    app.create_order("u_leaving").await;
    let deleted = cloud_event("del-1", "user.deleted", json!({"user_id": "u_leaving"}));
    assert_eq!(post_event(&app, &deleted).await.status(), 202);

    let response = app
        .post(
            "/api/v1/orders",
            &app.service_token(),
            &order_body("u_leaving"),
            None,
        )
        .await;
    assert_eq!(response.status(), 422);
    let body = problem(response).await;
    assert_eq!(body["errors"][0]["field"], "user_id");
    assert_eq!(body["errors"][0]["message"], "this user was deleted");

    let created = cloud_event(
        "ord-9",
        "order.created",
        json!({"order_id": "x-9", "user_id": "u_leaving", "currency": "usd",
               "items": [{"sku": "a", "name": "A", "quantity": 1, "unit_price": 100}]}),
    );
    let response = post_event(&app, &created).await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        problem(response).await["errors"][0]["field"],
        "data.user_id"
    );
    // Others still can.
    app.create_order("u_staying").await;
}

/// Fails the first `failures` lookups with a 503, then answers: 200 for `u_known`, 404 else.
struct Flaky {
    failures: usize,
    calls: Arc<AtomicUsize>,
}

impl Respond for Flaky {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.failures {
            return ResponseTemplate::new(503);
        }
        if request.url.path().ends_with("/users/u_known") {
            ResponseTemplate::new(200).set_body_json(json!({"id": "u_known"}))
        } else if request.url.path().ends_with("/users/u_gone") {
            ResponseTemplate::new(410)
        } else {
            ResponseTemplate::new(404)
        }
    }
}

async fn the_account_service_is_asked_and_retried(backend: Backend) {
    let accounts = MockServer::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    Mock::given(method("GET"))
        .and(path("/v1/users/u_known"))
        .respond_with(Flaky {
            failures: 2,
            calls: calls.clone(),
        })
        .mount(&accounts)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/users/u_gone"))
        .respond_with(ResponseTemplate::new(410))
        .mount(&accounts)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/users/u_flaky"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&accounts)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/healthz"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&accounts)
        .await;
    let config = AccountsConfig {
        url: format!("{}/v1", accounts.uri()).parse().unwrap(),
        token: Some("acc-token".to_owned().into()),
        timeout: Duration::from_secs(1),
        retries: 2,
    };
    let app = TestApp::spawn_with(backend, move |c| c.accounts = Some(config), |_| {}).await;
    let service = app.service_token();

    // Two failures, then the answer: retried, and the order is made.
    app.create_order("u_known").await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let sent = accounts.received_requests().await.unwrap();
    assert_eq!(
        sent[0].headers.get("authorization").unwrap(),
        "Bearer acc-token"
    );

    for (user, field_message) in [
        ("u_nobody", "no such user"),
        ("u_gone", "this user was deleted"),
    ] {
        let response = app
            .post("/api/v1/orders", &service, &order_body(user), None)
            .await;
        assert_eq!(response.status(), 422, "{user}");
        assert_eq!(
            problem(response).await["errors"][0]["message"],
            field_message
        );
    }

    // Down for good: a 503 to retry, nothing created.
    let response = app
        .post("/api/v1/orders", &service, &order_body("u_flaky"), None)
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(problem(response).await["code"], "dependency_unavailable");
    let list = app
        .get_json("/api/v1/orders?user_id=u_flaky", &service)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);

    let ready = app.readiness().await;
    assert_eq!(ready["accounts"], "up");
    // Its health check now fails (no route answers it).
    accounts.reset().await;
    let ready = app.readiness().await;
    assert_eq!(
        ready["status"], "ready",
        "the database answers: still ready"
    );
    assert_eq!(ready["accounts"], "down");
}
