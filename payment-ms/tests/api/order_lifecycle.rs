//! An order's whole life through the gateway: totals with a discount, shipping and tax; a
//! buyer's edits while pending; a checkout that fails and one that pays; fulfillment by staff;
//! the transition table's refusals; the history and the events of each move; a refund in full.
//! And the lists' filters and sorts.

use serde_json::{Value, json};

use testkit::db_tests;
use testkit::helpers::{Backend, TestApp, error_fields, problem};

db_tests!(
    an_order_lives_from_cart_to_completion,
    a_paid_order_ends_only_through_a_refund,
    lists_filter_by_date_and_status_and_sort_by_amount,
);

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

async fn ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(status, 200, "{body}");
    body
}

fn address(country: &str) -> Value {
    json!({"name": "Ada Lovelace", "line1": "12 St James's Square", "city": "London",
           "postal_code": "SW1Y 4JH", "country": country})
}

/// (from, to, actor) of each history row.
async fn history(app: &TestApp, order_id: &str, token: &str) -> Vec<(String, String, String)> {
    let rows = app
        .get_json(&format!("/api/v1/orders/{order_id}/history"), token)
        .await;
    rows.as_array()
        .expect("history")
        .iter()
        .map(|row| {
            (
                row["from"].as_str().unwrap_or("-").to_owned(),
                row["to"].as_str().expect("to").to_owned(),
                row["actor"].as_str().expect("actor").to_owned(),
            )
        })
        .collect()
}

async fn an_order_lives_from_cart_to_completion(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let service = app.service_token();
    let buyer = app.token("ada", &[]);
    let put = send(
        &app,
        reqwest::Method::PUT,
        "/api/v1/products/book",
        &service,
        Some(json!({"name": "Notes on the Engine", "prices": {"eur": 1250}, "tax_rate_bps": 550})),
    )
    .await;
    assert_eq!(put.status(), 201);

    // The shop's backend creates it: 3 × 10.00 at 20 %, 1 × 5.00 at 5.5 %, 10.00 off, 5.00
    // shipping. The discount splits 857 / 143 (largest remainder); taxes 429 and 20.
    let response = app
        .post(
            "/api/v1/orders",
            &service,
            &json!({"user_id": "ada", "currency": "eur", "discount": 1000, "shipping": 500,
                "shipping_address": address("gb"), "billing_address": address("FR"),
                "items": [
                    {"sku": "print", "name": "Print", "quantity": 3, "unit_price": 1000, "tax_rate_bps": 2000},
                    {"sku": "card", "name": "Card", "quantity": 1, "unit_price": 500, "tax_rate_bps": 550}]}),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.expect("order");
    let id = order["id"].as_str().expect("id").to_owned();
    assert_eq!(order["status"], "pending");
    assert_eq!(
        [
            &order["subtotal"],
            &order["discount"],
            &order["shipping"],
            &order["tax"],
            &order["amount"]
        ],
        [3500, 1000, 500, 449, 3449]
    );
    assert_eq!(order["items"][0]["discount"], 857);
    assert_eq!(order["items"][0]["tax"], 429);
    assert_eq!(order["items"][0]["total"], 3000 - 857 + 429);
    assert_eq!(order["items"][1]["discount"], 143);
    assert_eq!(order["items"][1]["tax"], 20);
    assert_eq!(order["shipping_address"]["country"], "GB");
    assert_eq!(order["billing_address"]["country"], "FR");

    // The buyer edits the pending cart: a catalogue line (priced and taxed by the catalogue),
    // a quantity, a removal. The totals follow; a buyer cannot touch prices or the discount.
    let path = format!("/api/v1/orders/{id}");
    let items = format!("{path}/items");
    let order = ok(app
        .post(&items, &buyer, &json!({"sku": "book", "quantity": 2}), None)
        .await)
    .await;
    assert_eq!(order["items"][2]["unit_price"], 1250);
    assert_eq!(order["items"][2]["tax_rate_bps"], 550);
    assert_eq!(order["subtotal"], 6000);
    let response = app
        .post(
            &items,
            &buyer,
            &json!({"sku": "book", "quantity": 1, "unit_price": 1}),
            None,
        )
        .await;
    assert_eq!(response.status(), 403);
    let response = send(
        &app,
        reqwest::Method::PATCH,
        &path,
        &buyer,
        Some(json!({"discount": 0})),
    )
    .await;
    assert_eq!(response.status(), 403);
    let card = order["items"][1]["id"]
        .as_str()
        .expect("line id")
        .to_owned();
    let order = ok(send(
        &app,
        reqwest::Method::PATCH,
        &format!("{items}/{card}"),
        &buyer,
        Some(json!({"quantity": 2})),
    )
    .await)
    .await;
    assert_eq!(order["subtotal"], 6500);
    let print = order["items"][0]["id"]
        .as_str()
        .expect("line id")
        .to_owned();
    let order = ok(send(
        &app,
        reqwest::Method::DELETE,
        &format!("{items}/{print}"),
        &buyer,
        None,
    )
    .await)
    .await;
    // 2 × 5.00 and 2 × 12.50: 10.00 off splits 286 / 714; taxes 5.5 % of 714 and of 1786.
    assert_eq!(order["subtotal"], 3500);
    assert_eq!(order["items"][0]["discount"], 286);
    assert_eq!(order["items"][1]["discount"], 714);
    assert_eq!(order["tax"], 39 + 98);
    assert_eq!(order["amount"], 3500 - 1000 + 500 + 137);
    // A discount larger than what is left is refused, and nothing changes.
    let response = send(
        &app,
        reqwest::Method::PATCH,
        &path,
        &service,
        Some(json!({"discount": 3501})),
    )
    .await;
    assert_eq!(error_fields(response).await, ["discount"]);
    let response = send(
        &app,
        reqwest::Method::PATCH,
        &path,
        &buyer,
        Some(json!({"shipping_address": address("zz")})),
    )
    .await;
    assert_eq!(error_fields(response).await, ["shipping_address.country"]);
    assert_eq!(app.get_json(&path, &buyer).await["amount"], 3137);

    // A checkout: the order waits for it and its lines freeze. A declined card: payment_failed,
    // with the reason; a new checkout retries; paid.
    let response = app.checkout("ada", &id, None).await;
    assert_eq!(response.status(), 201);
    let payment: Value = response.json().await.expect("payment");
    assert_eq!(payment["amount"], 3137);
    assert_eq!(
        app.get_json(&path, &buyer).await["status"],
        "awaiting_payment"
    );
    let response = app
        .post(&items, &buyer, &json!({"sku": "book", "quantity": 1}), None)
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(problem(response).await["code"], "order_not_editable");
    let payment_id = payment["id"].as_str().expect("payment id");
    assert_eq!(app.press(payment_id, "decline").await.status(), 303);
    assert_eq!(app.verify("ada", payment_id).await["status"], "failed");
    let order = app.get_json(&path, &buyer).await;
    assert_eq!(order["status"], "payment_failed");
    assert!(order["status_reason"].is_string(), "{order}");
    let response = app.checkout("ada", &id, None).await;
    assert_eq!(response.status(), 201);
    let payment: Value = response.json().await.expect("payment");
    let payment_id = payment["id"].as_str().expect("id");
    assert_eq!(app.press(payment_id, "pay").await.status(), 303);
    assert_eq!(app.verify("ada", payment_id).await["status"], "succeeded");
    assert_eq!(app.get_json(&path, &buyer).await["status"], "paid");

    // Fulfillment is staff work, in the table's order.
    let transition = format!("{path}/transition");
    let response = app
        .post(&transition, &buyer, &json!({"status": "processing"}), None)
        .await;
    assert_eq!(response.status(), 403);
    let response = app
        .post(&transition, &service, &json!({"status": "delivered"}), None)
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(
        problem(response).await["code"],
        "order_transition_not_allowed"
    );
    let response = app
        .post(
            &transition,
            &service,
            &json!({"status": "shipped", "carrier": "Royal Mail"}),
            None,
        )
        .await;
    assert_eq!(error_fields(response).await, ["tracking_number"]);
    for body in [
        json!({"status": "processing"}),
        json!({"status": "shipped", "carrier": "Royal Mail", "tracking_number": "RM123456785GB"}),
        json!({"status": "delivered"}),
        json!({"status": "completed"}),
    ] {
        ok(app.post(&transition, &service, &body, None).await).await;
    }
    let order = app.get_json(&path, &buyer).await;
    assert_eq!(order["status"], "completed");
    assert_eq!(order["carrier"], "Royal Mail");
    assert_eq!(order["tracking_number"], "RM123456785GB");
    let response = app
        .post(&format!("{path}/cancel"), &buyer, &json!({}), None)
        .await;
    assert_eq!(response.status(), 409);

    // Every move is in the history, with who made it; every move recorded its event.
    let staff = "service:shop_backend";
    let expected = [
        ("-", "pending", staff),
        ("pending", "awaiting_payment", "system"),
        ("awaiting_payment", "payment_failed", "system"),
        ("payment_failed", "awaiting_payment", "system"),
        ("awaiting_payment", "paid", "system"),
        ("paid", "processing", staff),
        ("processing", "shipped", staff),
        ("shipped", "delivered", staff),
        ("delivered", "completed", staff),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(history(&app, &id, &buyer).await, expected);
    assert_eq!(
        app.events_of(&id).await,
        [
            "order.created",
            "order.updated",
            "order.updated",
            "order.updated",
            "order.payment_pending",
            "order.payment_failed",
            "order.payment_pending",
            "order.paid",
            "order.processing",
            "order.fulfilled",
            "order.delivered",
            "order.completed",
        ]
    );
    // Another buyer sees none of it.
    let other = app.token("eve", &[]);
    assert_eq!(
        app.get(&format!("{path}/history"), &other).await.status(),
        404
    );
}

async fn a_paid_order_ends_only_through_a_refund(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (order, payment) = app.order_and_payment("bob").await;
    let id = order["id"].as_str().expect("id");
    let bob = app.token("bob", &[]);
    let path = format!("/api/v1/orders/{id}");
    let payment_id = payment["id"].as_str().expect("id");
    assert_eq!(app.press(payment_id, "pay").await.status(), 303);
    assert_eq!(app.verify("bob", payment_id).await["status"], "succeeded");
    let response = app
        .post(
            &format!("{path}/cancel"),
            &bob,
            &json!({"reason": "changed my mind"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(problem(response).await["code"], "order_not_cancelable");
    let response = app
        .post(
            &format!("{path}/transition"),
            &app.admin_token(),
            &json!({"status": "canceled"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 409);
    // A person must look: requires_action needs a reason, then back to processing.
    let transition = format!("{path}/transition");
    let response = app
        .post(
            &transition,
            &app.admin_token(),
            &json!({"status": "requires_action"}),
            None,
        )
        .await;
    assert_eq!(error_fields(response).await, ["reason"]);
    let order = ok(app
        .post(
            &transition,
            &app.admin_token(),
            &json!({"status": "requires_action", "reason": "address undeliverable"}),
            None,
        )
        .await)
    .await;
    assert_eq!(order["status_reason"], "address undeliverable");
    let response = app
        .post(
            &format!(
                "/api/v1/payments/{}/refunds",
                payment["id"].as_str().expect("id")
            ),
            &app.admin_token(),
            &json!({"reason": "requested_by_customer"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let order = app.get_json(&path, &bob).await;
    assert_eq!(order["status"], "refunded");
    let rows = history(&app, id, &bob).await;
    let last = rows.last().expect("rows");
    assert_eq!(
        (last.0.as_str(), last.1.as_str(), last.2.as_str()),
        ("requires_action", "refunded", "system")
    );

    // An unpaid order is canceled by its owner with a reason (body optional).
    let other = app.create_order("bob").await;
    let other_id = other["id"].as_str().expect("id");
    let order = ok(app
        .post(
            &format!("/api/v1/orders/{other_id}/cancel"),
            &bob,
            &json!({"reason": "found it cheaper"}),
            None,
        )
        .await)
    .await;
    assert_eq!(order["status"], "canceled");
    assert_eq!(order["status_reason"], "found it cheaper");
    let third = app.create_order("bob").await;
    let response = app
        .client
        .post(app.url(&format!(
            "/api/v1/orders/{}/cancel",
            third["id"].as_str().expect("id")
        )))
        .bearer_auth(&bob)
        .send()
        .await
        .expect("cancel");
    assert_eq!(response.status(), 200);
    let rows = history(&app, other_id, &bob).await;
    assert_eq!(
        rows[1],
        ("pending".into(), "canceled".into(), "user:bob".into())
    );
}

async fn lists_filter_by_date_and_status_and_sort_by_amount(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let service = app.service_token();
    let mut ids = Vec::new();
    for price in [500, 2000, 1000, 2000, 100] {
        let response = app
            .post(
                "/api/v1/orders",
                &service,
                &json!({"user_id": "cy", "currency": "usd",
                    "items": [{"sku": "x", "name": "X", "quantity": 1, "unit_price": price}]}),
                None,
            )
            .await;
        let order: Value = response.json().await.expect("order");
        ids.push(order["id"].as_str().expect("id").to_owned());
    }
    let cy = app.token("cy", &[]);
    // Largest first, two at a time; equal amounts newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("/api/v1/orders?sort=-amount&limit=2&cursor={c}"),
            None => "/api/v1/orders?sort=-amount&limit=2".to_owned(),
        };
        let page = app.get_json(&query, &cy).await;
        for order in page["data"].as_array().expect("data") {
            seen.push((
                order["amount"].as_i64().expect("amount"),
                order["id"].as_str().expect("id").to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let expected = vec![
        (2000, ids[3].clone()),
        (2000, ids[1].clone()),
        (1000, ids[2].clone()),
        (500, ids[0].clone()),
        (100, ids[4].clone()),
    ];
    assert_eq!(seen, expected);
    let page = app
        .get_json("/api/v1/orders?sort=amount&limit=1", &cy)
        .await;
    assert_eq!(page["data"][0]["amount"], 100);
    let page = app
        .get_json("/api/v1/orders?sort=created_at&limit=1", &cy)
        .await;
    assert_eq!(page["data"][0]["id"], ids[0].as_str());

    // Dates: all of them since an hour ago, none from tomorrow.
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let page = app
        .get_json(
            &format!("/api/v1/orders?created_from={hour_ago}&limit=100"),
            &cy,
        )
        .await;
    assert_eq!(page["data"].as_array().expect("data").len(), 5);
    let page = app
        .get_json(&format!("/api/v1/orders?created_from={tomorrow}"), &cy)
        .await;
    assert_eq!(page["data"].as_array().expect("data").len(), 0);
    let response = app
        .get(
            &format!("/api/v1/orders?created_from={tomorrow}&created_to={hour_ago}"),
            &cy,
        )
        .await;
    assert_eq!(error_fields(response).await, ["created_to"]);
    let response = app.get("/api/v1/orders?sort=total", &cy).await;
    assert_eq!(error_fields(response).await, ["sort"]);
    let response = app
        .get("/api/v1/orders?sort=-amount&cursor=ord_x", &cy)
        .await;
    assert_eq!(error_fields(response).await, ["cursor"]);
    let page = app.get_json("/api/v1/orders?status=pending", &cy).await;
    assert_eq!(page["data"].as_array().expect("data").len(), 5);
    let page = app
        .get_json("/api/v1/orders?status=awaiting_payment", &cy)
        .await;
    assert_eq!(page["data"].as_array().expect("data").len(), 0);
    // Someone else's list holds none of cy's.
    let page = app.get_json("/api/v1/orders", &app.token("dee", &[])).await;
    assert_eq!(page["data"].as_array().expect("data").len(), 0);
}
