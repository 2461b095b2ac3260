//! The checkout redirect flow: order → checkout → hosted page → back → verify, and each way it
//! can end.

use payment_ms::{orders::entities::orders, payments::entities::payments};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use testkit::helpers::{Backend, TestApp, problem};

testkit::db_tests!(
    pays_through_the_hosted_page,
    decline_fails_the_payment,
    cancel_cancels_the_payment,
    a_payment_past_its_time_expires_on_verify,
    the_sweep_expires_due_orders_and_their_payments,
    the_sweep_records_a_payment_made_at_the_last_moment,
    a_new_checkout_closes_the_previous_one,
    a_canceled_order_cannot_be_paid,
);

/// Moves payment-ms's clock past the payment's expiry (and not the order's).
fn pass_payment_expiry(app: &TestApp) {
    let ttl = chrono::Duration::from_std(app.ms.config.payment_ttl).unwrap();
    app.clock.advance(ttl + chrono::Duration::seconds(1));
}

async fn pays_through_the_hosted_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let order = app.create_order("alice").await;
    assert_eq!(order["status"], "pending");
    assert_eq!(order["amount"], 2 * 1999 + 850);
    let order_id = order["id"].as_str().unwrap();

    let response = app.checkout("alice", order_id, None).await;
    assert_eq!(response.status(), 201);
    let payment: Value = response.json().await.unwrap();
    assert_eq!(payment["status"], "pending");
    assert_eq!(payment["amount"], 4848);
    assert_eq!(payment["currency"], "usd");
    assert_eq!(payment["provider"], "mock");
    let payment_id = payment["id"].as_str().unwrap();

    // The buyer's browser follows checkout_url: the page shows the lines and the amount.
    let page = app
        .client
        .get(payment["checkout_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("48.48 USD"), "{html}");
    assert!(html.contains("T-shirt") && html.contains("Mug"));
    // The same page is reachable through the gateway.
    let via_gateway = app
        .client
        .get(app.url(&format!("/checkout/{payment_id}")))
        .send()
        .await
        .unwrap();
    assert!(via_gateway.text().await.unwrap().contains("48.48 USD"));

    let response = app.press(payment_id, "pay").await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        format!("https://shop.example/paid?step=done&payment_id={payment_id}").as_str()
    );
    // Paying at the provider changes nothing here until someone verifies.
    let before: Value = app
        .get(
            &format!("/api/v1/payments/{payment_id}"),
            &app.token("alice", &[]),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before["status"], "pending");

    let verified = app.verify("alice", payment_id).await;
    assert_eq!(verified["status"], "succeeded");
    let order: Value = app
        .get(
            &format!("/api/v1/orders/{order_id}"),
            &app.token("alice", &[]),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["status"], "paid");

    // Verifying again changes nothing and records nothing.
    let again = app.verify("alice", payment_id).await;
    assert_eq!(again, verified);
    assert_eq!(
        app.events_of(payment_id).await,
        ["payment.created", "payment.succeeded"]
    );
    assert_eq!(
        app.events_of(order_id).await,
        ["order.created", "order.payment_pending", "order.paid"]
    );

    let row = payments::Entity::find_by_id(payment_id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.status.as_str(), row.amount), ("succeeded", 4848));
    let row = orders::Entity::find_by_id(order_id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, "paid");

    // A paid checkout cannot be paid again.
    assert_eq!(app.press(payment_id, "pay").await.status(), 409);
}

async fn decline_fails_the_payment(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (order, payment) = app.order_and_payment("alice").await;
    let payment_id = payment["id"].as_str().unwrap();
    let response = app.press(payment_id, "decline").await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        format!("https://shop.example/cart?payment_id={payment_id}").as_str()
    );
    let verified = app.verify("alice", payment_id).await;
    assert_eq!(verified["status"], "failed");
    assert!(
        verified["failure_reason"]
            .as_str()
            .unwrap()
            .starts_with("card_declined")
    );
    app.verify("alice", payment_id).await;
    assert_eq!(
        app.events_of(payment_id).await,
        ["payment.created", "payment.failed"]
    );
    // The order can still be paid with a new checkout.
    let order_id = order["id"].as_str().unwrap();
    assert_eq!(
        app.events_of(order_id).await,
        [
            "order.created",
            "order.payment_pending",
            "order.payment_failed"
        ]
    );
    assert_eq!(app.checkout("alice", order_id, None).await.status(), 201);
}

async fn cancel_cancels_the_payment(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, payment) = app.order_and_payment("alice").await;
    let payment_id = payment["id"].as_str().unwrap();
    let path = format!("/api/v1/payments/{payment_id}/cancel");
    let response = app
        .post(&path, &app.token("alice", &[]), &json!({}), None)
        .await;
    assert_eq!(response.status(), 200);
    let canceled: Value = response.json().await.unwrap();
    assert_eq!(canceled["status"], "canceled");

    // The hosted page no longer takes money, and nothing changes on verify.
    assert_eq!(app.press(payment_id, "pay").await.status(), 409);
    assert_eq!(app.verify("alice", payment_id).await["status"], "canceled");
    let again = app
        .post(&path, &app.token("alice", &[]), &json!({}), None)
        .await;
    assert_eq!(again.status(), 409);
    assert_eq!(problem(again).await["code"], "payment_not_cancelable");
    assert_eq!(
        app.events_of(payment_id).await,
        ["payment.created", "payment.canceled"]
    );
}

async fn a_payment_past_its_time_expires_on_verify(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (order, payment) = app.order_and_payment("alice").await;
    let payment_id = payment["id"].as_str().unwrap();
    pass_payment_expiry(&app);

    let page = app
        .client
        .get(app.url(&format!("/checkout/{payment_id}")))
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("closed"));
    assert_eq!(app.press(payment_id, "pay").await.status(), 409);
    assert_eq!(app.verify("alice", payment_id).await["status"], "expired");
    assert_eq!(app.verify("alice", payment_id).await["status"], "expired");
    assert_eq!(
        app.events_of(payment_id).await,
        ["payment.created", "payment.expired"]
    );
    // The order itself is still open: pending (editable) again.
    assert_eq!(
        app.events_of(order["id"].as_str().unwrap()).await,
        ["order.created", "order.payment_pending", "order.updated"]
    );
}

async fn the_sweep_expires_due_orders_and_their_payments(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (order, payment) = app.order_and_payment("alice").await;
    let (order_id, payment_id) = (
        order["id"].as_str().unwrap(),
        payment["id"].as_str().unwrap(),
    );
    let untouched = app.create_order("bob").await;

    let later = app.ms.core.now() + chrono::Duration::hours(25);
    let sweep = payment_ms::jobs::expire_due(&app.ms, later, 100)
        .await
        .unwrap();
    assert_eq!((sweep.payments, sweep.orders), (1, 2));
    assert_eq!(
        app.events_of(payment_id).await,
        ["payment.created", "payment.expired"]
    );
    assert_eq!(
        app.events_of(order_id).await,
        [
            "order.created",
            "order.payment_pending",
            "order.updated",
            "order.expired"
        ]
    );
    let bob_order = untouched["id"].as_str().unwrap();
    assert_eq!(
        app.events_of(bob_order).await,
        ["order.created", "order.expired"]
    );

    // A second sweep finds nothing left to do.
    let sweep = payment_ms::jobs::expire_due(&app.ms, later, 100)
        .await
        .unwrap();
    assert_eq!((sweep.payments, sweep.orders), (0, 0));
    let response = app.checkout("alice", order_id, None).await;
    assert_eq!(response.status(), 409);
    assert_eq!(problem(response).await["code"], "order_not_payable");
}

async fn the_sweep_records_a_payment_made_at_the_last_moment(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (order, payment) = app.order_and_payment("alice").await;
    let payment_id = payment["id"].as_str().unwrap();
    assert_eq!(app.press(payment_id, "pay").await.status(), 303);
    pass_payment_expiry(&app);

    // The buyer paid but never came back; the sweep asks the provider before expiring.
    let sweep = payment_ms::jobs::expire_due(&app.ms, app.ms.core.now(), 100)
        .await
        .unwrap();
    assert_eq!(sweep.payments, 0);
    assert_eq!(
        app.events_of(payment_id).await,
        ["payment.created", "payment.succeeded"]
    );
    assert_eq!(
        app.events_of(order["id"].as_str().unwrap()).await,
        ["order.created", "order.payment_pending", "order.paid"]
    );
}

async fn a_new_checkout_closes_the_previous_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (order, first) = app.order_and_payment("alice").await;
    let order_id = order["id"].as_str().unwrap();
    let first_id = first["id"].as_str().unwrap();
    let response = app.checkout("alice", order_id, None).await;
    assert_eq!(response.status(), 201);
    let second: Value = response.json().await.unwrap();
    let second_id = second["id"].as_str().unwrap();

    // One payable checkout per order: the buyer cannot pay twice.
    assert_eq!(app.press(first_id, "pay").await.status(), 409);
    assert_eq!(
        app.events_of(first_id).await,
        ["payment.created", "payment.canceled"]
    );
    assert_eq!(app.press(second_id, "pay").await.status(), 303);
    assert_eq!(app.verify("alice", second_id).await["status"], "succeeded");
    let paid = payments::Entity::find()
        .filter(payments::Column::OrderId.eq(order_id))
        .filter(payments::Column::Status.eq("succeeded"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(paid.len(), 1);
    // And a paid order takes no further checkout.
    let response = app.checkout("alice", order_id, None).await;
    assert_eq!(response.status(), 409);
}

async fn a_canceled_order_cannot_be_paid(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (order, payment) = app.order_and_payment("alice").await;
    let order_id = order["id"].as_str().unwrap();
    let path = format!("/api/v1/orders/{order_id}/cancel");
    let response = app
        .post(&path, &app.service_token(), &json!({}), None)
        .await;
    assert_eq!(response.status(), 200);
    let canceled: Value = response.json().await.unwrap();
    assert_eq!(canceled["status"], "canceled");
    let payment_id = payment["id"].as_str().unwrap();
    assert_eq!(app.press(payment_id, "pay").await.status(), 409);
    assert_eq!(
        app.events_of(order_id).await,
        [
            "order.created",
            "order.payment_pending",
            "order.updated",
            "order.canceled"
        ]
    );
    assert_eq!(
        app.events_of(payment_id).await,
        ["payment.created", "payment.canceled"]
    );
    assert_eq!(app.checkout("alice", order_id, None).await.status(), 409);
}
