//! Idempotency-Key: retries and duplicates never create a second order or payment.

use payment_ms::{orders::entities::orders, payments::entities::payments};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::Value;

use testkit::helpers::{Backend, TestApp, checkout_body, order_body, problem};

testkit::db_tests!(
    concurrent_checkouts_with_one_key_make_one_payment,
    order_creation_replays_and_refuses_a_changed_body,
    keys_belong_to_their_user,
    client_errors_are_replayed_too,
);

async fn concurrent_checkouts_with_one_key_make_one_payment(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let order = app.create_order("alice").await;
    let order_id = order["id"].as_str().unwrap();

    let attempts = (0..20).map(|_| async {
        let response = app.checkout("alice", order_id, Some("checkout-1")).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    });
    let replies = futures::future::join_all(attempts).await;

    let created: Vec<&String> = replies
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    assert!(
        !created.is_empty(),
        "one attempt creates the payment: {replies:?}"
    );
    assert!(
        created.iter().all(|b| *b == created[0]),
        "every success is the same payment"
    );
    for (status, body) in &replies {
        if *status != 201 {
            assert_eq!(*status, 409, "{body}");
            let problem: Value = serde_json::from_str(body).unwrap();
            assert_eq!(problem["code"], "idempotency_key_in_use");
        }
    }
    let count = payments::Entity::find()
        .filter(payments::Column::OrderId.eq(order_id))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 1);

    // Those told 409 retry, and get the same payment; so does anyone later.
    let retry = app.checkout("alice", order_id, Some("checkout-1")).await;
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(&retry.text().await.unwrap(), created[0]);
    let payment: Value = serde_json::from_str(created[0]).unwrap();
    assert_eq!(
        app.events_of(payment["id"].as_str().unwrap()).await,
        ["payment.created"]
    );

    // The same key with another body is refused and changes nothing.
    let mut other = checkout_body();
    other["success_url"] = "https://shop.example/elsewhere".into();
    let response = app
        .post(
            &format!("/api/v1/orders/{order_id}/checkout"),
            &app.token("alice", &[]),
            &other,
            Some("checkout-1"),
        )
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(problem(response).await["code"], "idempotency_key_reused");
    let count = payments::Entity::find()
        .filter(payments::Column::OrderId.eq(order_id))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

async fn order_creation_replays_and_refuses_a_changed_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.service_token();
    let first = app
        .post(
            "/api/v1/orders",
            &token,
            &order_body("alice"),
            Some("order-1"),
        )
        .await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = first.text().await.unwrap();
    let again = app
        .post(
            "/api/v1/orders",
            &token,
            &order_body("alice"),
            Some("order-1"),
        )
        .await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.text().await.unwrap(), first);

    let changed = app
        .post(
            "/api/v1/orders",
            &token,
            &order_body("bob"),
            Some("order-1"),
        )
        .await;
    assert_eq!(changed.status(), 422);
    let orders = orders::Entity::find().count(&app.db).await.unwrap();
    assert_eq!(orders, 1);

    // Without a key every POST creates.
    for _ in 0..2 {
        let r = app
            .post("/api/v1/orders", &token, &order_body("alice"), None)
            .await;
        assert_eq!(r.status(), 201);
    }
    assert_eq!(orders::Entity::find().count(&app.db).await.unwrap(), 3);
}

async fn keys_belong_to_their_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice_order = app.create_order("alice").await;
    let bob_order = app.create_order("bob").await;
    let a = app
        .checkout(
            "alice",
            alice_order["id"].as_str().unwrap(),
            Some("same-key"),
        )
        .await;
    let b = app
        .checkout("bob", bob_order["id"].as_str().unwrap(), Some("same-key"))
        .await;
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (201, 201));
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_ne!(a["id"], b["id"]);
    assert_eq!(b["user_id"], "bob");
}

async fn client_errors_are_replayed_too(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let order = app.create_order("alice").await;
    let order_id = order["id"].as_str().unwrap();
    // Bob's attempt on Alice's order is a 404, and stays one under that key.
    let first = app.checkout("bob", order_id, Some("k")).await;
    assert_eq!(first.status(), 404);
    let second = app.checkout("bob", order_id, Some("k")).await;
    assert_eq!(second.status(), 404);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    // A malformed key is refused outright.
    let response = app
        .client
        .post(app.url(&format!("/api/v1/orders/{order_id}/checkout")))
        .bearer_auth(app.token("alice", &[]))
        .header("Idempotency-Key", "")
        .json(&checkout_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(problem(response).await["code"], "invalid_idempotency_key");
}
