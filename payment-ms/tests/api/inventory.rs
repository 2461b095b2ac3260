//! Stock and what checkouts hold of it, through the gateway: concurrent checkouts never hold
//! more than is on hand, paying commits, and what is not paid comes back.

use futures::future::join_all;
use serde_json::{Value, json};

use testkit::db_tests;
use testkit::helpers::{Backend, TestApp, checkout_body, problem};

db_tests!(
    concurrent_checkouts_never_hold_more_than_is_on_hand,
    stock_is_managed_by_trusted_callers_and_never_below_what_is_held,
    an_order_paid_after_its_stock_went_elsewhere_requires_action,
);

async fn set_stock(app: &TestApp, sku: &str, on_hand: i64) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/api/v1/inventory/{sku}")))
        .bearer_auth(app.service_token())
        .json(&json!({ "on_hand": on_hand }))
        .send()
        .await
        .expect("PUT")
}

async fn stock(app: &TestApp, sku: &str) -> Value {
    app.get_json(&format!("/api/v1/inventory/{sku}"), &app.service_token())
        .await
}

/// An order of one `sku` for `user`.
async fn order_of(app: &TestApp, user: &str, sku: &str) -> String {
    let response = app
        .post(
            "/api/v1/orders",
            &app.service_token(),
            &json!({"user_id": user, "currency": "usd", "items": [
                {"sku": sku, "name": "Limited tee", "quantity": 1, "unit_price": 2500},
                {"sku": "gift-note", "name": "Gift note", "quantity": 1, "unit_price": 0}
            ]}),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.expect("order");
    order["id"].as_str().expect("id").to_owned()
}

async fn concurrent_checkouts_never_hold_more_than_is_on_hand(backend: Backend) {
    const BUYERS: usize = 200;
    let app = TestApp::spawn_with(
        backend,
        |_| {},
        |g| {
            // 200 buyers behind one address.
            g.rate_per_address.per_second = 0;
        },
    )
    .await;
    assert_eq!(set_stock(&app, "tee-limited", 10).await.status(), 200);
    let mut orders = Vec::new();
    for i in 0..BUYERS {
        let user = format!("buyer-{i}");
        let order = order_of(&app, &user, "tee-limited").await;
        orders.push((user, order));
    }

    // Everyone checks out at once: ten hold a unit, the rest are told it is gone.
    let answers = join_all(
        orders
            .iter()
            .map(|(user, order)| app.checkout(user, order, None)),
    )
    .await;
    let mut held = Vec::new();
    let mut refused = 0;
    for (answer, (user, _)) in answers.into_iter().zip(&orders) {
        match answer.status().as_u16() {
            201 => {
                let payment: Value = answer.json().await.expect("payment");
                held.push((user.clone(), payment["id"].as_str().expect("id").to_owned()));
            }
            409 => {
                let body = problem(answer).await;
                assert_eq!(body["code"], "out_of_stock");
                assert_eq!(body["detail"], "tee-limited: 1 wanted, 0 available");
                refused += 1;
            }
            other => panic!("a checkout answered {other}: {:?}", answer.text().await),
        }
    }
    assert_eq!(held.len(), 10);
    assert_eq!(refused, BUYERS - 10);
    let now = stock(&app, "tee-limited").await;
    assert_eq!(
        (
            now["on_hand"].as_i64(),
            now["reserved"].as_i64(),
            now["available"].as_i64()
        ),
        (Some(10), Some(10), Some(0))
    );
    // The untracked line held nothing.
    let untracked = app
        .get("/api/v1/inventory/gift-note", &app.service_token())
        .await;
    assert_eq!(untracked.status(), 404);

    // Five pay: on hand goes down by five.
    for (user, payment) in &held[..5] {
        assert_eq!(app.press(payment, "pay").await.status(), 303);
        assert_eq!(app.verify(user, payment).await["status"], "succeeded");
    }
    let now = stock(&app, "tee-limited").await;
    assert_eq!(
        (
            now["on_hand"].as_i64(),
            now["reserved"].as_i64(),
            now["available"].as_i64()
        ),
        (Some(5), Some(5), Some(0))
    );

    // The other five let their checkouts lapse: their holds expire with them.
    app.clock.advance(chrono::TimeDelta::minutes(31));
    let now = stock(&app, "tee-limited").await;
    assert_eq!(
        (
            now["on_hand"].as_i64(),
            now["reserved"].as_i64(),
            now["available"].as_i64()
        ),
        (Some(5), Some(0), Some(5))
    );
    // A buyer who was refused can now have one.
    let (user, order) = &orders[BUYERS - 1];
    let response = app.checkout(user, order, None).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    assert_eq!(stock(&app, "tee-limited").await["available"], 4);
}

async fn stock_is_managed_by_trusted_callers_and_never_below_what_is_held(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Buyers neither read nor set stock.
    let buyer = app.token("carol", &[]);
    let response = app.get("/api/v1/inventory/mug-blue", &buyer).await;
    assert_eq!(response.status(), 403);
    let response = app
        .client
        .put(app.url("/api/v1/inventory/mug-blue"))
        .bearer_auth(&buyer)
        .json(&json!({"on_hand": 5}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 403);
    // Unknown SKUs are not tracked; bad bodies name their field.
    assert_eq!(
        app.get("/api/v1/inventory/mug-blue", &app.service_token())
            .await
            .status(),
        404
    );
    let response = set_stock(&app, "mug-blue", -1).await;
    assert_eq!(response.status(), 422);
    assert_eq!(problem(response).await["errors"][0]["field"], "on_hand");

    let response = set_stock(&app, "mug-blue", 3).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("stock");
    assert_eq!(body["sku"], "mug-blue");
    assert_eq!(body["available"], 3);

    // Two units held by a checkout: on hand cannot go below them.
    let order = app
        .post(
            "/api/v1/orders",
            &app.service_token(),
            &json!({"user_id": "carol", "currency": "usd", "items": [
                {"sku": "mug-blue", "name": "Blue mug", "quantity": 2, "unit_price": 900}]}),
            None,
        )
        .await;
    let order: Value = order.json().await.expect("order");
    let order_id = order["id"].as_str().expect("id");
    let response = app.checkout("carol", order_id, None).await;
    assert_eq!(response.status(), 201);
    let payment: Value = response.json().await.expect("payment");
    let response = set_stock(&app, "mug-blue", 1).await;
    assert_eq!(response.status(), 409);
    assert_eq!(problem(response).await["code"], "stock_reserved");
    assert_eq!(stock(&app, "mug-blue").await["on_hand"], 3);

    // A second checkout of the same order replaces the first's hold, it does not add to it.
    let again = app
        .post(
            &format!("/api/v1/orders/{order_id}/checkout"),
            &buyer,
            &checkout_body(),
            None,
        )
        .await;
    assert_eq!(again.status(), 201);
    assert_eq!(stock(&app, "mug-blue").await["reserved"], 2);

    // Canceling the order gives the units back.
    let response = app
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            &buyer,
            &json!({}),
            None,
        )
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let now = stock(&app, "mug-blue").await;
    assert_eq!(
        (now["reserved"].as_i64(), now["available"].as_i64()),
        (Some(0), Some(3))
    );
    // The first checkout's payment ended with its order.
    let first = app
        .get_json(
            &format!("/api/v1/payments/{}", payment["id"].as_str().expect("id")),
            &buyer,
        )
        .await;
    assert_ne!(first["status"], "pending");
    assert_eq!(set_stock(&app, "mug-blue", 0).await.status(), 200);
}

async fn an_order_paid_after_its_stock_went_elsewhere_requires_action(backend: Backend) {
    use payment_ms::clock::Clock;
    use payment_ms::inventory::entities::stock_reservations;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let app = TestApp::spawn(backend).await;
    assert_eq!(set_stock(&app, "lamp", 1).await.status(), 200);
    let first = order_of(&app, "ada", "lamp").await;
    let response = app.checkout("ada", &first, None).await;
    assert_eq!(response.status(), 201);
    let late: Value = response.json().await.expect("payment");
    // Ada's hold lapses while her checkout is still open at the provider (a payment completed
    // in its last moments and recorded after them): the unit goes to Bob.
    stock_reservations::Entity::update_many()
        .col_expr(
            stock_reservations::Column::ExpiresAt,
            (app.clock.now() - chrono::TimeDelta::minutes(1)).into(),
        )
        .filter(stock_reservations::Column::OrderId.eq(first.as_str()))
        .exec(&app.db)
        .await
        .expect("lapse the hold");
    let second = order_of(&app, "bob", "lamp").await;
    assert_eq!(app.checkout("bob", &second, None).await.status(), 201);

    // Ada's payment is recorded: paid, but the lamp is Bob's. Her order says so, for a person.
    let late_id = late["id"].as_str().expect("id");
    assert_eq!(app.press(late_id, "pay").await.status(), 303);
    assert_eq!(app.verify("ada", late_id).await["status"], "succeeded");
    let order = app
        .get_json(&format!("/api/v1/orders/{first}"), &app.token("ada", &[]))
        .await;
    assert_eq!(order["status"], "requires_action");
    let reason = order["status_reason"].as_str().expect("reason");
    assert!(reason.contains("short of lamp"), "{reason}");
    let events = app.events_of(&first).await;
    assert_eq!(
        events[events.len() - 2..],
        ["order.paid", "order.requires_action"]
    );
    // Bob's hold is untouched, and nothing went below zero.
    let now = stock(&app, "lamp").await;
    assert_eq!(
        (now["on_hand"].as_i64(), now["reserved"].as_i64()),
        (Some(1), Some(1))
    );
}
