//! What the partner registry refuses or bounds: credentials in URLs, addresses into our network
//! written as IPv6, rotation grace past a week, more partners than configured; and what the
//! delivery list says of each delivery.

use serde_json::{Value, json};

use testkit::helpers::{Backend, TestApp, problem};

testkit::db_tests!(
    urls_with_credentials_or_hidden_private_addresses_are_refused,
    the_rotation_grace_is_at_most_a_week,
    the_number_of_partners_is_bounded,
    deliveries_say_which_event_type_they_carry,
);

async fn create(app: &TestApp, body: Value) -> reqwest::Response {
    app.post("/api/v1/partners", &app.admin_token(), &body, None)
        .await
}

async fn urls_with_credentials_or_hidden_private_addresses_are_refused(backend: Backend) {
    // Loopback is not allowed here, as in production.
    let app = TestApp::spawn_with(backend, |c| c.webhooks.allowed_cidrs = Vec::new(), |_| {}).await;
    let response = create(
        &app,
        json!({"name": "p", "url": "https://user:hunter2@hooks.example/in"}),
    )
    .await;
    assert_eq!(response.status(), 422);
    let body = problem(response).await;
    assert_eq!(body["errors"][0]["field"], "url");
    assert!(!body.to_string().contains("hunter2"), "{body}");

    // IPv6 literals are refused by their form; the same addresses reached through DNS are
    // judged as the IPv4 address they carry (the guard's unit tests go through each form).
    for url in [
        "http://[::127.0.0.1]/hooks",
        "http://[::ffff:0:7f00:1]/hooks",
        "http://[2002:7f00:1::1]/hooks",
        "http://[64:ff9b::a00:1]/hooks",
        "http://[::ffff:169.254.169.254]/latest",
    ] {
        let response = create(&app, json!({"name": "p", "url": url})).await;
        assert_eq!(response.status(), 422, "{url}");
        let body = problem(response).await;
        assert_eq!(body["errors"][0]["field"], "url", "{url}");
    }
}

async fn the_rotation_grace_is_at_most_a_week(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let partner: Value = create(&app, json!({"name": "p", "url": "http://127.0.0.1:9/h"}))
        .await
        .json()
        .await
        .unwrap();
    let path = format!(
        "/api/v1/partners/{}/rotate-secret",
        partner["id"].as_str().unwrap()
    );
    let response = app
        .post(
            &path,
            &app.admin_token(),
            &json!({"grace_seconds": 604_801}),
            None,
        )
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        problem(response).await["errors"][0]["field"],
        "grace_seconds"
    );
    let response = app
        .post(
            &path,
            &app.admin_token(),
            &json!({"grace_seconds": u64::MAX}),
            None,
        )
        .await;
    assert_eq!(response.status(), 422);
    // The old secret is still the only one: nothing was rotated.
    let read: Value = app
        .get(
            &format!("/api/v1/partners/{}", partner["id"].as_str().unwrap()),
            &app.admin_token(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["previous_secret_expires_at"], Value::Null);
    let response = app
        .post(
            &path,
            &app.admin_token(),
            &json!({"grace_seconds": 604_800}),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
}

async fn the_number_of_partners_is_bounded(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.webhooks.max_partners = 3, |_| {}).await;
    // Created at once: the bound holds under concurrency too.
    let attempts = (0..6).map(|i| {
        create(
            &app,
            json!({"name": format!("p{i}"), "url": "http://127.0.0.1:9/h"}),
        )
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        3,
        "{statuses:?}"
    );
    let response = create(&app, json!({"name": "more", "url": "http://127.0.0.1:9/h"})).await;
    assert_eq!(response.status(), 409);
    assert_eq!(problem(response).await["code"], "partner_limit_reached");
}

async fn deliveries_say_which_event_type_they_carry(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.webhooks.enabled = false, |_| {}).await;
    let partner: Value = create(
        &app,
        json!({"name": "p", "url": "http://127.0.0.1:9/h", "event_types": ["order.*"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let order = app.create_order("alice").await;
    let id = partner["id"].as_str().unwrap();
    let list: Value = app
        .get(
            &format!("/api/v1/partners/{id}/deliveries"),
            &app.admin_token(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["event_type"], "order.created");
    let delivery_id = list["data"][0]["id"].as_str().unwrap();
    let one: Value = app
        .get(
            &format!("/api/v1/partners/{id}/deliveries/{delivery_id}"),
            &app.admin_token(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["event_type"], "order.created");
    let event_id = one["event_id"].as_str().unwrap();
    let of_event: Value = app
        .get(
            &format!("/api/v1/events/{event_id}/deliveries"),
            &app.admin_token(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(of_event["data"][0]["event_type"], "order.created");
    assert!(order["id"].is_string());
}
