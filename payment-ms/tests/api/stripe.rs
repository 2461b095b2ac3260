//! Stripe specifics, against the local stand-in: what we send Stripe, its webhooks (signature,
//! replay, racing verify), server-side PaymentIntents, refunds across an outage, refunds made in
//! Stripe's dashboard, and Stripe's errors.

use payment_ms::providers::stripe::Mode;
use payment_ms::{inbound::entities::provider_events, refunds::entities::refunds};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::contract::{Harness, Kind, checkout_with_method, spawn_stripe, stripe_config};
use crate::fake_stripe::{FakeStripe, SECRET_KEY, WEBHOOK_SECRET};
use testkit::db_tests;
use testkit::helpers::{Backend, TestApp, problem};

db_tests!(
    a_checkout_session_carries_the_order,
    a_webhook_settles_the_payment_once,
    two_copies_of_one_event_at_once_ask_stripe_once,
    bad_signatures_change_nothing,
    saved_cards_are_charged_at_once,
    a_refund_survives_a_stripe_outage,
    dashboard_refunds_are_recorded,
);

async fn stripe(backend: Backend) -> Harness {
    Harness::spawn(Kind::Stripe, backend).await
}

fn fake(h: &Harness) -> &FakeStripe {
    h.stripe.as_ref().expect("stripe harness")
}

async fn send_webhook(app: &TestApp, body: &str, signature: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/providers/stripe/webhook"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("Stripe-Signature", signature);
    }
    request.send().await.expect("webhook")
}

/// Stripe may deliver one event twice at the same moment: the first copy is handled (one
/// question to Stripe), the other is told to come back (409), and comes back a duplicate.
async fn two_copies_of_one_event_at_once_ask_stripe_once(backend: Backend) {
    let h = stripe(backend).await;
    let (_, payment) = h.app.order_and_payment("alice").await;
    let id = payment["id"].as_str().unwrap();
    let session = fake(&h).pay(payment["provider_reference"].as_str().unwrap());
    let (body, signature) = fake(&h).event("checkout.session.completed", session);
    let asked = |h: &Harness| {
        fake(h)
            .seen()
            .iter()
            .filter(|s| s.method == "GET" && s.path.starts_with("/v1/checkout/sessions/"))
            .count()
    };
    let before = asked(&h);
    fake(&h).slow_down(std::time::Duration::from_millis(500));
    let (first, second) = tokio::join!(send_webhook(&h.app, &body, Some(&signature)), async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        send_webhook(&h.app, &body, Some(&signature)).await
    });
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 409);
    assert_eq!(problem(second).await["code"], "event_in_progress");
    assert_eq!(asked(&h) - before, 1, "Stripe was asked once");
    assert_eq!(h.payment_row(id).await.status, "succeeded");
    // Stripe's retry of the second copy is a duplicate, answered without asking again.
    fake(&h).slow_down(std::time::Duration::ZERO);
    let retry = send_webhook(&h.app, &body, Some(&signature)).await;
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.json::<Value>().await.unwrap()["duplicate"], true);
    assert_eq!(asked(&h) - before, 1);
    assert_eq!(
        h.app.events_of(id).await,
        ["payment.created", "payment.succeeded"]
    );
}

async fn a_checkout_session_carries_the_order(backend: Backend) {
    let h = stripe(backend).await;
    let (order, payment) = h.app.order_and_payment("alice").await;
    let seen = fake(&h).seen();
    let create = seen
        .iter()
        .find(|s| s.method == "POST" && s.path == "/v1/checkout/sessions")
        .expect("a session was created");
    let pay_id = payment["id"].as_str().unwrap();
    assert_eq!(
        create.authorization.as_deref(),
        Some(&*format!("Bearer {SECRET_KEY}"))
    );
    assert_eq!(
        create.version.as_deref(),
        Some(payment_ms::providers::stripe::API_VERSION)
    );
    assert_eq!(
        create.idempotency_key.as_deref(),
        Some(&*format!("checkout-{pay_id}"))
    );
    let form = &create.form;
    assert_eq!(form["mode"], "payment");
    assert_eq!(form["client_reference_id"], pay_id);
    assert_eq!(form["metadata[payment_id]"], pay_id);
    assert_eq!(form["metadata[order_id]"], order["id"].as_str().unwrap());
    assert_eq!(form["payment_intent_data[metadata][payment_id]"], pay_id);
    assert_eq!(form["line_items[0][quantity]"], "2");
    assert_eq!(form["line_items[0][price_data][unit_amount]"], "1999");
    assert_eq!(form["line_items[0][price_data][currency]"], "usd");
    assert_eq!(
        form["line_items[0][price_data][product_data][name]"],
        "T-shirt"
    );
    assert_eq!(form["line_items[1][price_data][unit_amount]"], "850");
    assert_eq!(
        form["success_url"],
        format!("https://shop.example/paid?step=done&payment_id={pay_id}")
    );
    // Stripe computed the same total from the lines.
    let session = fake(&h).session(payment["provider_reference"].as_str().unwrap());
    assert_eq!(session["amount_total"], 4848);
    assert_eq!(payment["checkout_url"], session["url"]);
    assert_eq!(payment["provider"], "stripe");
}

async fn a_webhook_settles_the_payment_once(backend: Backend) {
    let h = stripe(backend).await;
    let (order, payment) = h.app.order_and_payment("alice").await;
    let id = payment["id"].as_str().unwrap();
    // The buyer pays and never comes back: only Stripe's webhook tells us.
    let session = fake(&h).pay(payment["provider_reference"].as_str().unwrap());
    let (body, signature) = fake(&h).event("checkout.session.completed", session.clone());
    let response = send_webhook(&h.app, &body, Some(&signature)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"received": true, "duplicate": false})
    );
    let row = h.payment_row(id).await;
    assert_eq!(row.status, "succeeded");
    assert!(
        row.provider_payment_reference
            .is_some_and(|pi| pi.starts_with("pi_"))
    );
    let order_id = order["id"].as_str().unwrap();
    assert_eq!(
        h.app.events_of(order_id).await,
        ["order.created", "order.payment_pending", "order.paid"]
    );

    // The buyer comes back after all, Stripe repeats itself, and the PaymentIntent's own event
    // arrives late: nothing more is recorded.
    assert_eq!(h.app.verify("alice", id).await["status"], "succeeded");
    let replay = send_webhook(&h.app, &body, Some(&signature)).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.json::<Value>().await.unwrap()["duplicate"], true);
    let intent = fake(&h).intent(&h.payment_row(id).await.provider_payment_reference.unwrap());
    let (late, late_signature) = fake(&h).event("payment_intent.succeeded", intent);
    assert_eq!(
        send_webhook(&h.app, &late, Some(&late_signature))
            .await
            .status(),
        200
    );
    assert_eq!(
        h.app.events_of(id).await,
        ["payment.created", "payment.succeeded"]
    );
    assert_eq!(
        provider_events::Entity::find()
            .count(&h.app.db)
            .await
            .unwrap(),
        2
    );

    // The other way round: verify first, then the webhook.
    let (_, second) = h.app.order_and_payment("bob").await;
    let second_id = second["id"].as_str().unwrap();
    let session = fake(&h).pay(second["provider_reference"].as_str().unwrap());
    assert_eq!(h.app.verify("bob", second_id).await["status"], "succeeded");
    let (body, signature) = fake(&h).event("checkout.session.completed", session);
    assert_eq!(
        send_webhook(&h.app, &body, Some(&signature)).await.status(),
        200
    );
    assert_eq!(
        h.app.events_of(second_id).await,
        ["payment.created", "payment.succeeded"]
    );
}

async fn bad_signatures_change_nothing(backend: Backend) {
    let h = stripe(backend).await;
    let (_, payment) = h.app.order_and_payment("alice").await;
    let id = payment["id"].as_str().unwrap();
    let session = fake(&h).pay(payment["provider_reference"].as_str().unwrap());
    let (body, signature) = fake(&h).event("checkout.session.completed", session);
    let tampered = body.replace("\"paid\"", "\"paid\" ");
    let wrong_secret = payment_ms::providers::stripe::signature::sign(
        "whsec_someone_else",
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );
    let stale = payment_ms::providers::stripe::signature::sign(
        WEBHOOK_SECRET,
        chrono::Utc::now().timestamp() - 301,
        body.as_bytes(),
    );
    for (what, body, signature) in [
        ("tampered body", tampered.as_str(), Some(signature.as_str())),
        ("wrong secret", body.as_str(), Some(wrong_secret.as_str())),
        ("stale timestamp", body.as_str(), Some(stale.as_str())),
        ("no header", body.as_str(), None),
        ("garbage header", body.as_str(), Some("t=abc,v1=zz")),
    ] {
        let response = send_webhook(&h.app, body, signature).await;
        assert_eq!(response.status(), 400, "{what}");
        assert_eq!(
            problem(response).await["code"],
            "invalid_signature",
            "{what}"
        );
    }
    assert_eq!(h.payment_row(id).await.status, "pending");
    assert_eq!(h.app.events_of(id).await, ["payment.created"]);
    assert_eq!(
        provider_events::Entity::find()
            .count(&h.app.db)
            .await
            .unwrap(),
        0
    );
    // The good one still works afterwards.
    assert_eq!(
        send_webhook(&h.app, &body, Some(&signature)).await.status(),
        200
    );
    assert_eq!(h.payment_row(id).await.status, "succeeded");
}

async fn saved_cards_are_charged_at_once(backend: Backend) {
    let fake_stripe = FakeStripe::start().await;
    let config = stripe_config(&fake_stripe.uri(), Mode::PaymentIntents);
    let app = spawn_stripe(backend, config).await;
    let h = Harness {
        app,
        stripe: Some(fake_stripe),
    };

    let paid = checkout_with_method(&h.app, "alice", "pm_card_visa").await;
    assert_eq!(paid.status(), 201);
    let paid: Value = paid.json().await.unwrap();
    assert_eq!(paid["status"], "succeeded");
    assert!(paid["checkout_url"].is_null());
    assert!(
        paid["provider_reference"]
            .as_str()
            .unwrap()
            .starts_with("pi_")
    );
    let id = paid["id"].as_str().unwrap();
    assert_eq!(
        h.app.events_of(id).await,
        ["payment.created", "payment.succeeded"]
    );
    assert_eq!(
        h.app.events_of(paid["order_id"].as_str().unwrap()).await,
        ["order.created", "order.payment_pending", "order.paid"]
    );

    let declined = checkout_with_method(&h.app, "alice", "pm_card_chargeDeclined").await;
    assert_eq!(declined.status(), 201);
    let declined: Value = declined.json().await.unwrap();
    assert_eq!(declined["status"], "failed");
    assert!(
        declined["failure_reason"]
            .as_str()
            .unwrap()
            .contains("generic_decline"),
        "{declined}"
    );

    // 3-D Secure: the caller gets what the buyer's browser needs to finish.
    let action = checkout_with_method(&h.app, "alice", "pm_card_authenticationRequired").await;
    assert_eq!(action.status(), 201);
    let action: Value = action.json().await.unwrap();
    assert_eq!(action["status"], "pending");
    assert_eq!(action["next_action"]["type"], "use_stripe_sdk");
    let reference = action["provider_reference"].as_str().unwrap();
    assert_eq!(
        action["next_action"]["client_secret"],
        format!("{reference}_secret_fake")
    );

    // An unknown payment method: Stripe's refusal, as ours.
    let unknown = checkout_with_method(&h.app, "alice", "pm_nope").await;
    assert_eq!(unknown.status(), 422);
    let unknown = problem(unknown).await;
    assert_eq!(unknown["code"], "provider_rejected");
    assert!(
        unknown["detail"]
            .as_str()
            .unwrap()
            .contains("No such PaymentMethod")
    );
}

async fn a_refund_survives_a_stripe_outage(backend: Backend) {
    let h = stripe(backend).await;
    let (_, payment) = h.paid("alice").await;
    let id = payment["id"].as_str().unwrap();
    // Stripe fails every try of this request (three tries).
    fake(&h).fail_next_refunds(&[500, 500, 500]);
    let down = h.refund(id, json!({"amount": 700}), Some("outage")).await;
    assert_eq!(down.status(), 502);
    let down = problem(down).await;
    assert_eq!(down["code"], "provider_unavailable");
    let pending = refunds::Entity::find()
        .filter(refunds::Column::PaymentId.eq(id))
        .all(&h.app.db)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].status, "pending");
    assert!(down["detail"].as_str().unwrap().contains(&pending[0].id));
    // The pending refund holds its amount: no one can refund it twice meanwhile.
    let meanwhile = h.refund(id, json!({"amount": 4848 - 699}), None).await;
    assert_eq!(meanwhile.status(), 422);
    assert_eq!(h.payment_row(id).await.amount_refunded, 0);

    // The retry with the same key settles that same refund.
    let retry = h.refund(id, json!({"amount": 700}), Some("outage")).await;
    assert_eq!(retry.status(), 201);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["id"], pending[0].id.as_str());
    assert_eq!(retry["status"], "succeeded");
    assert_eq!(h.provider_refunded(id).await, 700);
    assert_eq!(h.payment_row(id).await.amount_refunded, 700);

    // A refusal by Stripe: recorded as failed, the payment untouched.
    fake(&h).fail_next_refunds(&[400]);
    let refused = h.refund(id, json!({"amount": 100}), None).await;
    assert_eq!(refused.status(), 422);
    assert_eq!(problem(refused).await["code"], "refund_refused");
    let failed = refunds::Entity::find()
        .filter(refunds::Column::PaymentId.eq(id))
        .filter(refunds::Column::Status.eq("failed"))
        .count(&h.app.db)
        .await
        .unwrap();
    assert_eq!(failed, 1);
    assert_eq!(h.payment_row(id).await.amount_refunded, 700);

    // A refund left pending with no retry (its answer lost) is settled by the sweep.
    fake(&h).fail_next_refunds(&[500, 500, 500]);
    assert_eq!(
        h.refund(id, json!({"amount": 300}), None).await.status(),
        502
    );
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let settled = h.app.ms.refunds.settle_pending(later, 10).await.unwrap();
    assert_eq!(settled, 1);
    assert_eq!(h.payment_row(id).await.amount_refunded, 1000);
    assert_eq!(h.provider_refunded(id).await, 1000);
    let pending = refunds::Entity::find()
        .filter(refunds::Column::Status.eq("pending"))
        .count(&h.app.db)
        .await
        .unwrap();
    assert_eq!(pending, 0);
}

async fn dashboard_refunds_are_recorded(backend: Backend) {
    let h = stripe(backend).await;
    let (_, payment) = h.paid("alice").await;
    let id = payment["id"].as_str().unwrap();
    let intent = h.payment_row(id).await.provider_payment_reference.unwrap();
    fake(&h).refund_in_dashboard(&intent, 1200);
    let charge = json!({
        "id": format!("ch_of_{intent}"),
        "object": "charge",
        "amount": 4848,
        "amount_refunded": 1200,
        "currency": "usd",
        "metadata": {},
        "payment_intent": intent,
        "refunded": false,
        "status": "succeeded",
    });
    let (body, signature) = fake(&h).event("charge.refunded", charge);
    assert_eq!(
        send_webhook(&h.app, &body, Some(&signature)).await.status(),
        200
    );
    let row = h.payment_row(id).await;
    assert_eq!(
        (row.status.as_str(), row.amount_refunded),
        ("partially_refunded", 1200)
    );
    let list: Value = h
        .app
        .get(
            &format!("/api/v1/payments/{id}/refunds"),
            &h.app.admin_token(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["amount"], 1200);
    assert_eq!(list["data"][0]["reason"], "refunded at the provider");
    // Replayed, or repeated as a new event: recorded once.
    assert_eq!(
        send_webhook(&h.app, &body, Some(&signature)).await.status(),
        200
    );
    let (again, again_signature) = fake(&h).event(
        "charge.refunded",
        json!({"id": "ch_x", "object": "charge", "payment_intent": intent, "metadata": {}}),
    );
    assert_eq!(
        send_webhook(&h.app, &again, Some(&again_signature))
            .await
            .status(),
        200
    );
    assert_eq!(h.payment_row(id).await.amount_refunded, 1200);
    let refunded = h
        .app
        .events_of(id)
        .await
        .into_iter()
        .filter(|e| e == "payment.refunded")
        .count();
    assert_eq!(refunded, 1);
    // What remains can still be refunded through the API.
    let rest = h.refund(id, json!({}), None).await;
    assert_eq!(rest.status(), 201);
    assert_eq!(rest.json::<Value>().await.unwrap()["amount"], 3648);
}

/// Stripe refusing our key is an outage for the caller, and the key never shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_api_key_does_not_leak() {
    let fake_stripe = FakeStripe::start().await;
    let mut config = stripe_config(&fake_stripe.uri(), Mode::Checkout);
    config.secret_key = secrecy::SecretString::from("sk_test_wrong_key_value");
    let app = spawn_stripe(Backend::Sqlite, config).await;
    let order = app.create_order("alice").await;
    let response = app
        .checkout("alice", order["id"].as_str().unwrap(), None)
        .await;
    assert_eq!(response.status(), 502);
    let body = response.text().await.unwrap();
    assert!(body.contains("provider_unavailable"), "{body}");
    assert!(!body.contains("sk_test"), "{body}");
}
