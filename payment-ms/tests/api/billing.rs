//! Billing through the gateway, on a test clock: a subscription's year (trial, renewals on the
//! 31st, an upgrade with proration, a downgrade, pause and resume, cancel at the period's end),
//! dunning until the end policy, and an invoice paid through its checkout.

use serde_json::{Value, json};

use crate::inbox::cloud_event;
use testkit::db_tests;
use testkit::helpers::{Backend, TestApp, checkout_body, problem};

db_tests!(
    a_year_of_a_subscription_on_a_test_clock,
    declined_charges_are_retried_then_the_subscription_is_canceled,
    an_invoice_without_a_saved_method_is_paid_through_its_checkout,
    other_services_events_act_on_subscriptions,
);

pub(crate) async fn create_plan(app: &TestApp, code: &str, amount: i64, trial_days: i64) -> Value {
    let response = app
        .post(
            "/api/v1/plans",
            &app.admin_token(),
            &json!({"code": code, "name": code.to_uppercase(), "currency": "usd",
                    "interval": "month", "amount": amount, "trial_days": trial_days}),
            None,
        )
        .await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    response.json().await.expect("plan")
}

pub(crate) async fn create_clock(app: &TestApp, at: &str) -> String {
    let response = app
        .post(
            "/api/v1/test-clocks",
            &app.admin_token(),
            &json!({"frozen_time": at, "name": "billing test"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let clock: Value = response.json().await.expect("clock");
    clock["id"].as_str().expect("id").to_owned()
}

pub(crate) async fn advance(app: &TestApp, clock: &str, to: &str) -> Value {
    let response = app
        .post(
            &format!("/api/v1/test-clocks/{clock}/advance"),
            &app.admin_token(),
            &json!({"frozen_time": to}),
            None,
        )
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    response.json().await.expect("clock")
}

/// Opens the invoice's checkout as its owner (`token`) and presses Pay on the mock page;
/// answers the payment as the checkout made it.
pub(crate) async fn pay_by_checkout(app: &TestApp, token: &str, invoice_id: &str) -> Value {
    let response = app
        .post(
            &format!("/api/v1/invoices/{invoice_id}/checkout"),
            token,
            &checkout_body(),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let payment: Value = response.json().await.expect("payment");
    let payment_id = payment["id"].as_str().expect("id");
    assert_eq!(app.press(payment_id, "pay").await.status(), 303);
    payment
}

pub(crate) async fn subscription(app: &TestApp, id: &str) -> Value {
    app.get_json(&format!("/api/v1/subscriptions/{id}"), &app.admin_token())
        .await
}

pub(crate) async fn invoices_of(app: &TestApp, sub: &str) -> Vec<Value> {
    let page = app
        .get_json(
            &format!("/api/v1/invoices?subscription_id={sub}&limit=100"),
            &app.admin_token(),
        )
        .await;
    let mut invoices = page["data"].as_array().expect("data").clone();
    invoices.reverse(); // oldest first
    invoices
}

pub(crate) async fn subscribe(app: &TestApp, body: Value) -> Value {
    let response = app
        .post("/api/v1/subscriptions", &app.admin_token(), &body, None)
        .await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    response.json().await.expect("subscription")
}

pub(crate) async fn post_ok(app: &TestApp, path: &str, body: Value) -> Value {
    let response = app.post(path, &app.admin_token(), &body, None).await;
    assert_eq!(
        response.status(),
        200,
        "{path}: {:?}",
        response.text().await
    );
    response.json().await.expect("JSON")
}

async fn a_year_of_a_subscription_on_a_test_clock(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let _basic = create_plan(&app, "basic", 1000, 0).await;
    let pro = create_plan(&app, "pro", 2900, 14).await;
    let _business = create_plan(&app, "business", 9900, 0).await;
    let clock = create_clock(&app, "2027-01-17T10:00:00Z").await;

    let sub = subscribe(
        &app,
        json!({"plan": "pro", "user_id": "ann", "payment_method": "pm_mock_ok",
               "test_clock": clock}),
    )
    .await;
    let id = sub["id"].as_str().expect("id").to_owned();
    assert_eq!(sub["status"], "trialing");
    assert_eq!(sub["plan"]["id"], pro["id"]);
    assert_eq!(sub["trial_end"], "2027-01-31T10:00:00Z");
    assert_eq!(sub["current_period_end"], "2027-01-31T10:00:00Z");
    assert!(
        invoices_of(&app, &id).await.is_empty(),
        "nothing billed in a trial"
    );

    // The trial ends on the 31st: the first period is billed, finalized an hour later, charged.
    advance(&app, &clock, "2027-02-01T00:00:00Z").await;
    let sub = subscription(&app, &id).await;
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["current_period_start"], "2027-01-31T10:00:00Z");
    assert_eq!(sub["current_period_end"], "2027-02-28T10:00:00Z");
    // Then the 31st again, from the anchor, not from the 28th.
    advance(&app, &clock, "2027-03-01T00:00:00Z").await;
    let sub = subscription(&app, &id).await;
    assert_eq!(sub["current_period_end"], "2027-03-31T10:00:00Z");

    // An upgrade halfway: 15 of 31 days left. Credit 2900 × 15/31 = 1403.23 → 1403; charge
    // 9900 × 15/31 = 4790.32 → 4790.
    advance(&app, &clock, "2027-03-16T10:00:00Z").await;
    let sub = post_ok(
        &app,
        &format!("/api/v1/subscriptions/{id}/change"),
        json!({"plan": "business"}),
    )
    .await;
    assert_eq!(sub["plan"]["code"], "business");
    // A downgrade waits for the period's end.
    let sub = post_ok(
        &app,
        &format!("/api/v1/subscriptions/{id}/change"),
        json!({"plan": "basic"}),
    )
    .await;
    assert_eq!(sub["plan"]["code"], "business");
    assert!(sub["pending_plan_id"].is_string());
    // `now` is refused for a downgrade.
    let refused = app
        .post(
            &format!("/api/v1/subscriptions/{id}/change"),
            &app.admin_token(),
            &json!({"plan": "basic", "proration": "now"}),
            None,
        )
        .await;
    assert_eq!(refused.status(), 422);
    assert_eq!(problem(refused).await["errors"][0]["field"], "proration");

    advance(&app, &clock, "2027-04-01T00:00:00Z").await;
    let sub = subscription(&app, &id).await;
    assert_eq!(sub["plan"]["code"], "basic");
    assert_eq!(sub["pending_plan_id"], Value::Null);

    // Paused: two renewals pass without an invoice.
    advance(&app, &clock, "2027-04-10T00:00:00Z").await;
    let sub = post_ok(
        &app,
        &format!("/api/v1/subscriptions/{id}/pause"),
        json!({}),
    )
    .await;
    assert_eq!(sub["status"], "paused");
    advance(&app, &clock, "2027-06-01T00:00:00Z").await;
    let sub = post_ok(
        &app,
        &format!("/api/v1/subscriptions/{id}/resume"),
        json!({}),
    )
    .await;
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["current_period_start"], "2027-05-31T10:00:00Z");
    advance(&app, &clock, "2027-07-01T00:00:00Z").await;

    // Canceled at the period's end: active until then, then nothing more.
    let sub = post_ok(
        &app,
        &format!("/api/v1/subscriptions/{id}/cancel"),
        json!({"at_period_end": true, "reason": "moving on"}),
    )
    .await;
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["cancel_at_period_end"], true);
    advance(&app, &clock, "2027-08-01T00:00:00Z").await;
    let sub = subscription(&app, &id).await;
    assert_eq!(sub["status"], "canceled");
    assert_eq!(sub["ended_at"], "2027-07-31T10:00:00Z");
    assert_eq!(sub["cancellation_reason"], "moving on");
    let quiet = advance(&app, &clock, "2028-01-01T00:00:00Z").await;
    assert_eq!(quiet["jobs_run"], 0, "nothing is due after the end");

    let invoices = invoices_of(&app, &id).await;
    let summary: Vec<(String, i64, String, String, String)> = invoices
        .iter()
        .map(|i| {
            (
                i["number"].as_str().unwrap_or("").to_owned(),
                i["total"].as_i64().unwrap_or(-1),
                i["status"].as_str().unwrap_or("").to_owned(),
                i["billing_reason"].as_str().unwrap_or("").to_owned(),
                i["period_start"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected = [
        (
            "INV-2027-000001",
            2900,
            "subscription_cycle",
            "2027-01-31T10:00:00Z",
        ),
        (
            "INV-2027-000002",
            2900,
            "subscription_cycle",
            "2027-02-28T10:00:00Z",
        ),
        (
            "INV-2027-000003",
            3387,
            "subscription_update",
            "2027-03-16T10:00:00Z",
        ),
        (
            "INV-2027-000004",
            1000,
            "subscription_cycle",
            "2027-03-31T10:00:00Z",
        ),
        (
            "INV-2027-000005",
            1000,
            "subscription_cycle",
            "2027-06-30T10:00:00Z",
        ),
    ]
    .map(|(n, t, r, p)| {
        (
            n.to_owned(),
            t,
            "paid".to_owned(),
            r.to_owned(),
            p.to_owned(),
        )
    });
    assert_eq!(summary, expected);
    let upgrade: Vec<i64> = invoices[2]["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["amount"].as_i64().expect("amount"))
        .collect();
    assert_eq!(upgrade, [-1403, 4790]);
    assert_eq!(invoices[0]["paid_at"], "2027-01-31T11:00:00Z");

    let events = app.events_of(&id).await;
    let first_of = |t: &str| events.iter().position(|e| e == t);
    for t in [
        "subscription.created",
        "subscription.trial_ending",
        "subscription.updated",
        "subscription.paused",
        "subscription.resumed",
        "subscription.canceled",
    ] {
        assert!(first_of(t).is_some(), "{t} in {events:?}");
    }
    assert!(first_of("subscription.trial_ending") < first_of("subscription.updated"));
    assert_eq!(
        events.last().map(String::as_str),
        Some("subscription.canceled")
    );
    // The figures' running totals hold what their rows add up to, as kept and as the
    // migration that made them starts them from the rows already there.
    testkit::billing::assert_totals_match(&app.db).await;
    testkit::billing::rebuild_totals(&app.db)
        .await
        .expect("the totals rebuilt");
    testkit::billing::assert_totals_match(&app.db).await;
    // The figures of this clock's world: MRR and its movements, revenue, statuses.
    let figures = app
        .get_json(
            &format!("/api/v1/stats/mrr?test_clock={clock}&from=2027-01-01T00:00:00Z&to=2028-01-01T00:00:00Z"),
            &app.admin_token(),
        )
        .await;
    let movements: Vec<(String, i64, i64)> = figures["movements"]
        .as_array()
        .expect("movements")
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap_or("").to_owned(),
                m["amount"].as_i64().unwrap_or(0),
                m["subscriptions"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let expected_movements = [
        ("churn", -2000, 2),       // paused (1000), then canceled (1000)
        ("contraction", -8900, 1), // business to basic
        ("expansion", 7000, 1),    // pro to business
        ("new", 2900, 1),          // the trial ended
        ("reactivation", 1000, 1), // resumed
    ]
    .map(|(k, a, n)| (k.to_owned(), a, n));
    assert_eq!(movements, expected_movements);
    assert_eq!(figures["mrr"], json!([]), "nothing left at the end");
    let february = app
        .get_json(
            &format!("/api/v1/stats/mrr?test_clock={clock}&to=2027-02-15T00:00:00Z"),
            &app.admin_token(),
        )
        .await;
    assert_eq!(
        february["mrr"],
        json!([{"currency": "usd", "mrr": 2900, "subscriptions": 1}])
    );
    let statuses = app
        .get_json(
            &format!("/api/v1/stats/subscriptions?test_clock={clock}&from=2027-04-01T00:00:00Z&to=2027-05-01T00:00:00Z"),
            &app.admin_token(),
        )
        .await;
    assert_eq!(
        statuses["by_status"],
        json!([{"status": "canceled", "count": 1}])
    );
    assert_eq!(statuses["churn"]["paying_at_start"], 1);
    assert_eq!(statuses["churn"]["churned"], 1, "the pause in April");
    // Revenue is by the payments' real time: all five today.
    let revenue = app
        .get_json("/api/v1/stats/revenue", &app.admin_token())
        .await;
    let day = &revenue["data"][0];
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(day["period"], json!(today));
    assert_eq!(
        (
            &day["currency"],
            &day["gross"],
            &day["refunded"],
            &day["net"],
            &day["payments"]
        ),
        (
            &json!("usd"),
            &json!(11187),
            &json!(0),
            &json!(11187),
            &json!(5)
        )
    );
    assert_eq!(
        app.get("/api/v1/stats/revenue", &app.token("ann", &[]))
            .await
            .status(),
        403
    );
    let first = invoices[0]["id"].as_str().expect("id");
    assert_eq!(
        app.events_of(first).await,
        ["invoice.created", "invoice.finalized", "invoice.paid"]
    );
}

async fn declined_charges_are_retried_then_the_subscription_is_canceled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_plan(&app, "team", 5000, 7).await;
    let clock = create_clock(&app, "2027-01-01T00:00:00Z").await;
    let sub = subscribe(
        &app,
        json!({"plan": "team", "user_id": "bob", "payment_method": "pm_mock_declined",
               "test_clock": clock}),
    )
    .await;
    let id = sub["id"].as_str().expect("id").to_owned();

    // Trial ends 8 Jan 00:00; finalized 01:00; the charge is declined.
    advance(&app, &clock, "2027-01-08T02:00:00Z").await;
    assert_eq!(subscription(&app, &id).await["status"], "past_due");
    let invoice = invoices_of(&app, &id).await.remove(0);
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["attempt_count"], 1);
    assert_eq!(invoice["amount_due"], 5000);
    assert_eq!(invoice["next_payment_attempt"], "2027-01-13T01:00:00Z");

    // Retries at +5, +12 and +21 days from the first attempt, all declined: then canceled.
    advance(&app, &clock, "2027-01-20T00:00:00Z").await;
    let invoice = invoices_of(&app, &id).await.remove(0);
    assert_eq!(invoice["attempt_count"], 2);
    assert_eq!(invoice["next_payment_attempt"], "2027-01-20T01:00:00Z");
    advance(&app, &clock, "2027-02-01T00:00:00Z").await;
    let invoice = invoices_of(&app, &id).await.remove(0);
    assert_eq!(invoice["attempt_count"], 4);
    assert_eq!(invoice["status"], "uncollectible");
    assert_eq!(invoice["next_payment_attempt"], Value::Null);
    let sub = subscription(&app, &id).await;
    assert_eq!(sub["status"], "canceled");
    assert_eq!(sub["ended_at"], "2027-01-29T01:00:00Z");
    let invoice_id = invoice["id"].as_str().expect("id");
    let events = app.events_of(invoice_id).await;
    assert_eq!(
        events,
        [
            "invoice.created",
            "invoice.finalized",
            "invoice.payment_failed",
            "invoice.payment_failed",
            "invoice.payment_failed",
            "invoice.payment_failed",
            "invoice.marked_uncollectible",
        ]
    );
    // Its order can no longer be paid.
    let order_id = invoice["order_id"].as_str().expect("order");
    let order = app
        .get_json(&format!("/api/v1/orders/{order_id}"), &app.admin_token())
        .await;
    assert_eq!(order["status"], "canceled");
    testkit::billing::assert_totals_match(&app.db).await;
}

async fn an_invoice_without_a_saved_method_is_paid_through_its_checkout(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_plan(&app, "solo", 1500, 0).await;
    create_plan(&app, "free", 0, 0).await;
    let carol = app.token("carol", &[]);

    // A user subscribes themself; the first invoice waits for them.
    let response = app
        .post(
            "/api/v1/subscriptions",
            &carol,
            &json!({"plan": "solo"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let sub: Value = response.json().await.expect("subscription");
    assert_eq!(sub["status"], "incomplete");
    assert_eq!(sub["user_id"], "carol");
    let invoice_id = sub["latest_invoice_id"]
        .as_str()
        .expect("invoice")
        .to_owned();
    let invoice = app
        .get_json(&format!("/api/v1/invoices/{invoice_id}"), &carol)
        .await;
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["total"], 1500);
    assert!(
        invoice["number"]
            .as_str()
            .expect("number")
            .starts_with("INV-")
    );
    // Nobody else sees it.
    let other = app
        .get(
            &format!("/api/v1/invoices/{invoice_id}"),
            &app.token("dave", &[]),
        )
        .await;
    assert_eq!(other.status(), 404);
    // Another user may not subscribe carol.
    let refused = app
        .post(
            "/api/v1/subscriptions",
            &app.token("dave", &[]),
            &json!({"plan": "solo", "user_id": "carol"}),
            None,
        )
        .await;
    assert_eq!(refused.status(), 403);

    let payment = pay_by_checkout(&app, &carol, &invoice_id).await;
    assert_eq!(payment["amount"], 1500);
    let payment_id = payment["id"].as_str().expect("id");
    assert_eq!(app.verify("carol", payment_id).await["status"], "succeeded");
    let invoice = app
        .get_json(&format!("/api/v1/invoices/{invoice_id}"), &carol)
        .await;
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["amount_due"], 0);
    let sub = subscription(&app, sub["id"].as_str().expect("id")).await;
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["latest_invoice_id"], Value::Null);

    // A free plan is active at once, its zero invoice paid at finalization.
    let response = app
        .post(
            "/api/v1/subscriptions",
            &carol,
            &json!({"plan": "free"}),
            None,
        )
        .await;
    let free: Value = response.json().await.expect("subscription");
    assert_eq!(free["status"], "active");

    // Bad input names its fields and changes nothing.
    let response = app
        .post(
            "/api/v1/subscriptions",
            &carol,
            &json!({"plan": "nope", "time_zone": "Mars/Olympus"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 422);
    let body = problem(response).await;
    assert_eq!(body["errors"][0]["field"], "time_zone");
    let mine = app.get_json("/api/v1/subscriptions", &carol).await;
    assert_eq!(mine["data"].as_array().map(Vec::len), Some(2));
    testkit::billing::assert_totals_match(&app.db).await;
}

async fn send_event(app: &TestApp, id: &str, event_type: &str, data: Value) -> Value {
    let response = app
        .client
        .post(app.url("/api/v1/events"))
        .bearer_auth(app.service_token())
        .header("content-type", "application/cloudevents+json")
        .body(serde_json::to_vec(&cloud_event(id, event_type, data)).expect("JSON"))
        .send()
        .await
        .expect("POST /api/v1/events");
    assert_eq!(response.status(), 202, "{event_type}");
    response.json().await.expect("accepted")
}

async fn other_services_events_act_on_subscriptions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_plan(&app, "basic", 1000, 0).await;
    create_plan(&app, "pro", 2900, 0).await;
    let clock = create_clock(&app, "2027-01-01T00:00:00Z").await;
    let sub = subscribe(
        &app,
        json!({"plan": "basic", "user_id": "eve", "payment_method": "pm_mock_ok",
               "test_clock": clock}),
    )
    .await;
    let id = sub["id"].as_str().expect("id").to_owned();
    assert_eq!(sub["status"], "active", "charged at once on its clock");

    let paused = send_event(
        &app,
        "w-1",
        "wallet.insufficient_funds",
        json!({"user_id": "eve"}),
    )
    .await;
    assert_eq!(paused["outcome"], "applied");
    assert_eq!(subscription(&app, &id).await["status"], "paused");
    // Delivered again: nothing more happens.
    let again = send_event(
        &app,
        "w-1",
        "wallet.insufficient_funds",
        json!({"user_id": "eve"}),
    )
    .await;
    assert_eq!(again["duplicate"], true);
    post_ok(
        &app,
        &format!("/api/v1/subscriptions/{id}/resume"),
        json!({}),
    )
    .await;

    // Half of January left (15.5 of 31 days): credit 500, charge 1450.
    advance(&app, &clock, "2027-01-16T12:00:00Z").await;
    let upgraded = send_event(
        &app,
        "u-1",
        "user.upgraded",
        json!({"user_id": "eve", "plan_code": "pro"}),
    )
    .await;
    assert_eq!(upgraded["outcome"], "applied");
    let sub = subscription(&app, &id).await;
    assert_eq!(sub["plan"]["code"], "pro");
    let invoices = invoices_of(&app, &id).await;
    assert_eq!(
        invoices
            .iter()
            .map(|i| i["total"].as_i64())
            .collect::<Vec<_>>(),
        [Some(1000), Some(950)]
    );
    assert!(invoices.iter().all(|i| i["status"] == "paid"));

    // Deleted with 8 of 31 days left: 1000 × 8/31 = 258 back on the first payment, 950 ×
    // 8/15.5 = 490 on the second (together 2900 × 8/31 = 748).
    advance(&app, &clock, "2027-01-24T00:00:00Z").await;
    let deleted = send_event(&app, "d-1", "user.deleted", json!({"user_id": "eve"})).await;
    assert_eq!(deleted["outcome"], "applied");
    let sub = subscription(&app, &id).await;
    assert_eq!(sub["status"], "canceled");
    assert_eq!(sub["cancellation_reason"], "user deleted");
    assert_eq!(sub["ended_at"], "2027-01-24T00:00:00Z");
    let mut refunded = Vec::new();
    for invoice in &invoices {
        let order = invoice["order_id"].as_str().expect("order");
        let payments = app
            .get_json(
                &format!("/api/v1/payments?order_id={order}"),
                &app.admin_token(),
            )
            .await;
        refunded.push(payments["data"][0]["amount_refunded"].as_i64());
    }
    assert_eq!(refunded, [Some(258), Some(490)]);

    // A declined first invoice, charged again when the wallet is topped up.
    let sub = subscribe(
        &app,
        json!({"plan": "basic", "user_id": "fay", "payment_method": "pm_mock_declined"}),
    )
    .await;
    let invoice_id = sub["latest_invoice_id"]
        .as_str()
        .expect("invoice")
        .to_owned();
    for _ in 0..100 {
        if attempts(&app, &invoice_id).await == Some(1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        attempts(&app, &invoice_id).await,
        Some(1),
        "charged once by the runner"
    );
    let topped = send_event(
        &app,
        "b-1",
        "wallet.balance_changed",
        json!({"user_id": "fay", "currency": "usd", "balance": 5000}),
    )
    .await;
    assert_eq!(topped["outcome"], "applied");
    for _ in 0..100 {
        if attempts(&app, &invoice_id).await == Some(2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        attempts(&app, &invoice_id).await,
        Some(2),
        "charged again at once"
    );
    testkit::billing::assert_totals_match(&app.db).await;
}

async fn attempts(app: &TestApp, invoice_id: &str) -> Option<i64> {
    app.get_json(
        &format!("/api/v1/invoices/{invoice_id}"),
        &app.admin_token(),
    )
    .await["attempt_count"]
        .as_i64()
}
