//! Money: integer minor units, totals computed here, and no price from a browser.

use serde_json::{Value, json};

use testkit::helpers::{Backend, TestApp, problem};

testkit::db_tests!(
    totals_are_sums_of_integer_minor_units,
    a_browser_cannot_set_the_amount,
    out_of_range_numbers_are_422_not_a_panic,
);

async fn create(app: &TestApp, body: &Value) -> reqwest::Response {
    app.post("/api/v1/orders", &app.service_token(), body, None)
        .await
}

fn order_with(items: Value) -> Value {
    json!({"user_id": "alice", "currency": "usd", "items": items})
}

async fn totals_are_sums_of_integer_minor_units(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = create(
        &app,
        &order_with(json!([
            {"sku": "a", "name": "A", "quantity": 3, "unit_price": 333},
            {"sku": "b", "name": "B", "quantity": 1, "unit_price": 1},
            {"sku": "c", "name": "Free gift", "quantity": 1, "unit_price": 0}
        ])),
    )
    .await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["amount"], 1000);
    let lines: Vec<i64> = order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["line_total"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [999, 1, 0]);
    // Zero-decimal currencies are minor units too.
    let mut yen = order_with(json!([{"sku": "a", "name": "A", "quantity": 2, "unit_price": 500}]));
    yen["currency"] = "JPY".into();
    let order: Value = create(&app, &yen).await.json().await.unwrap();
    assert_eq!(
        (order["amount"].as_i64(), order["currency"].as_str()),
        (Some(1000), Some("jpy"))
    );
}

async fn a_browser_cannot_set_the_amount(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let order = app.create_order("alice").await;
    let order_id = order["id"].as_str().unwrap();
    let mut body = testkit::helpers::checkout_body();
    body["amount"] = json!(1);
    let response = app
        .post(
            &format!("/api/v1/orders/{order_id}/checkout"),
            &app.token("alice", &[]),
            &body,
            None,
        )
        .await;
    assert_eq!(response.status(), 422);
    let problem = problem(response).await;
    assert_eq!(problem["errors"][0]["field"], "amount");
    assert_eq!(app.events_of(order_id).await, ["order.created"]);

    // The amount charged is the order's, whatever the client sends.
    let (_, payment) = app.order_and_payment("alice").await;
    assert_eq!(payment["amount"], 4848);

    // A service cannot smuggle a total either: it is computed from the lines.
    let mut body = testkit::helpers::order_body("alice");
    body["total"] = json!(1);
    assert_eq!(create(&app, &body).await.status(), 422);
}

async fn out_of_range_numbers_are_422_not_a_panic(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        (
            json!([{"sku": "a", "name": "A", "quantity": 0, "unit_price": 1}]),
            "items[0].quantity",
        ),
        (
            json!([{"sku": "a", "name": "A", "quantity": -3, "unit_price": 1}]),
            "items[0].quantity",
        ),
        (
            json!([{"sku": "a", "name": "A", "quantity": 1, "unit_price": -1}]),
            "items[0].unit_price",
        ),
        (
            json!([{"sku": "a", "name": "A", "quantity": 1, "unit_price": 100_000_000_000_i64}]),
            "items[0].unit_price",
        ),
        (
            json!([{"sku": "a", "name": "A", "quantity": 1_000_000, "unit_price": 99_999_999_999_i64}]),
            "items[0]",
        ),
        (
            json!([{"sku": "a", "name": "A", "quantity": 1, "unit_price": 99_999_999_999_i64},
                {"sku": "b", "name": "B", "quantity": 1, "unit_price": 1}]),
            "items",
        ),
        (
            json!([{"sku": "a", "name": "A", "quantity": 1, "unit_price": 0}]),
            "items",
        ),
        (
            json!([{"sku": "a", "name": "A", "quantity": 1e30, "unit_price": 1}]),
            "items[0].quantity",
        ),
        (
            json!([{"sku": "a", "name": "A", "quantity": 1, "unit_price": 1.5}]),
            "items[0].unit_price",
        ),
        (json!([]), "items"),
        (
            json!([{"sku": "", "name": "A", "quantity": 1, "unit_price": 1}]),
            "items[0].sku",
        ),
    ];
    for (items, field) in cases {
        let response = create(&app, &order_with(items.clone())).await;
        assert_eq!(response.status(), 422, "{items}");
        let problem = problem(response).await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    // Integers past i64 arrive as text in raw JSON.
    let raw = r#"{"user_id":"alice","currency":"usd","items":[{"sku":"a","name":"A","quantity":99999999999999999999999,"unit_price":1}]}"#;
    let response = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(app.service_token())
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let mut bad_currency = testkit::helpers::order_body("alice");
    bad_currency["currency"] = "dollars".into();
    let problem = problem(create(&app, &bad_currency).await).await;
    assert_eq!(problem["errors"][0]["field"], "currency");

    let order = app.create_order("alice").await;
    let path = format!("/api/v1/orders/{}/checkout", order["id"].as_str().unwrap());
    for (success_url, cancel_url) in [
        ("/relative", "https://shop.example/c"),
        ("https://shop.example/s", "javascript:alert(1)"),
        ("ftp://shop.example/s", "https://shop.example/c"),
    ] {
        let body = json!({"success_url": success_url, "cancel_url": cancel_url});
        let response = app.post(&path, &app.token("alice", &[]), &body, None).await;
        assert_eq!(response.status(), 422, "{body}");
    }
    // Nothing was created by any of it.
    let list: Value = app
        .get("/api/v1/orders", &app.service_token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}
