//! Partner webhooks: signed, filtered, retried, logged, never lost, never sent to our own network.

use std::time::Duration;

use payment_ms::{
    events::entities::events, webhooks::entities::deliveries, webhooks::entities::delivery_attempts,
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use testkit::helpers::{Backend, TestApp, TestDb, problem};
use testkit::receiver::{Receiver, Reply, python_verifies};

testkit::db_tests!(
    partners_get_the_signed_events_they_asked_for,
    partner_registration_is_admin_only_and_validated,
    failures_are_retried_until_the_partner_answers,
    retry_after_is_honoured,
    a_refused_connection_is_retried_too,
    gone_disables_the_partner,
    a_partner_failing_past_the_schedule_is_disabled,
    rotated_secrets_both_sign_during_the_grace_period,
    resend_and_recover,
    events_written_while_no_worker_runs_are_delivered_later,
    a_worker_killed_mid_send_leaves_nothing_behind,
    a_burst_of_mixed_answers_is_recorded_attempt_by_attempt,
    a_stopping_worker_gives_back_what_it_did_not_send,
);

/// Registers a partner; returns (id, secret).
pub(crate) async fn register(app: &TestApp, url: &str, event_types: Value) -> (String, String) {
    let response = app
        .post(
            "/api/v1/partners",
            &app.admin_token(),
            &json!({"name": "Reservations", "url": url, "event_types": event_types}),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let partner: Value = response.json().await.unwrap();
    (
        partner["id"].as_str().unwrap().to_owned(),
        partner["secret"].as_str().unwrap().to_owned(),
    )
}

/// Pays an order end to end; returns (order id, payment id).
async fn pay_an_order(app: &TestApp) -> (String, String) {
    let (order, payment) = app.order_and_payment("alice").await;
    let payment_id = payment["id"].as_str().unwrap();
    assert_eq!(app.press(payment_id, "pay").await.status(), 303);
    assert_eq!(app.verify("alice", payment_id).await["status"], "succeeded");
    (
        order["id"].as_str().unwrap().to_owned(),
        payment_id.to_owned(),
    )
}

async fn delivery_of(app: &TestApp, partner_id: &str) -> Value {
    let list: Value = app
        .get(
            &format!("/api/v1/partners/{partner_id}/deliveries"),
            &app.admin_token(),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = list["data"][0]["id"].as_str().unwrap().to_owned();
    app.get(
        &format!("/api/v1/partners/{partner_id}/deliveries/{id}"),
        &app.admin_token(),
    )
    .await
    .json()
    .await
    .unwrap()
}

/// Starts a delivery worker on the app's payment-ms (its own is off in these tests) until
/// `stop` is cancelled.
pub(crate) fn start_worker(app: &TestApp, stop: &CancellationToken) -> tokio::task::JoinHandle<()> {
    let dispatcher = payment_ms::webhooks::dispatcher::Dispatcher::new(app.ms.clone()).unwrap();
    tokio::spawn(dispatcher.run(stop.clone()))
}

/// Waits until a partner's newest delivery is no longer pending.
async fn settled_delivery(app: &TestApp, partner_id: &str) -> Value {
    for _ in 0..250 {
        let delivery = delivery_of(app, partner_id).await;
        if delivery["status"] != "pending" {
            return delivery;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    panic!(
        "the delivery stayed pending: {}",
        delivery_of(app, partner_id).await
    );
}

async fn partners_get_the_signed_events_they_asked_for(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let everything = Receiver::start().await;
    let orders_only = Receiver::start().await;
    let (all_id, all_secret) = register(&app, &everything.url, json!(["*"])).await;
    let (orders_id, orders_secret) = register(&app, &orders_only.url, json!(["order.*"])).await;

    let (order_id, payment_id) = pay_an_order(&app).await;

    let hits = everything.wait_for(5).await;
    let mut types: Vec<String> = hits.iter().map(|h| h.event_type()).collect();
    types.sort();
    assert_eq!(
        types,
        [
            "order.created",
            "order.paid",
            "order.payment_pending",
            "payment.created",
            "payment.succeeded"
        ]
    );
    for hit in &hits {
        assert_eq!(hit.verify(&all_secret), Ok(()));
        assert!(
            hit.verify(&orders_secret).is_err(),
            "each partner has its own secret"
        );
        let body = hit.json();
        assert_eq!(hit.header("webhook-id"), body["id"].as_str().unwrap());
        assert!(hit.header("content-type").starts_with("application/json"));
        let subject = if body["type"].as_str().unwrap().starts_with("order") {
            &order_id
        } else {
            &payment_id
        };
        assert_eq!(&body["data"]["id"], subject.as_str());
    }
    let paid = hits
        .iter()
        .find(|h| h.event_type() == "payment.succeeded")
        .unwrap();
    assert_eq!(paid.json()["data"]["status"], "succeeded");
    assert_eq!(paid.json()["data"]["amount"], 4848);
    // A standard verifier accepts what our worker really sent, and only with the right secret.
    assert_ne!(
        python_verifies(&all_secret, paid),
        Some(false),
        "standardwebhooks verifies it"
    );
    assert_ne!(
        python_verifies(&orders_secret, paid),
        Some(true),
        "and refuses another secret"
    );

    let hits = orders_only.wait_for(3).await;
    let mut types: Vec<String> = hits.iter().map(|h| h.event_type()).collect();
    types.sort();
    assert_eq!(
        types,
        ["order.created", "order.paid", "order.payment_pending"]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        orders_only.hits().len(),
        3,
        "nothing else arrives for order.*"
    );
    assert!(hits.iter().all(|h| h.verify(&orders_secret).is_ok()));

    // The delivery log says the same.
    let list: Value = app
        .get(
            &format!("/api/v1/partners/{all_id}/deliveries?status=succeeded"),
            &app.admin_token(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 5);
    let paid_event = paid.header("webhook-id").to_owned();
    let per_event: Value = app
        .get(
            &format!("/api/v1/events/{paid_event}/deliveries"),
            &app.admin_token(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(per_event["data"].as_array().unwrap().len(), 1);
    let detail = delivery_of(&app, &orders_id).await;
    assert_eq!(detail["status"], "succeeded");
    assert_eq!(detail["attempt_log"][0]["status_code"], 200);
    assert_eq!(detail["attempt_log"][0]["response_excerpt"], "thanks");
}

async fn partner_registration_is_admin_only_and_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({"name": "P", "url": "https://partner.example/hook"});
    for token in [app.service_token(), app.token("alice", &[])] {
        let response = app.post("/api/v1/partners", &token, &body, None).await;
        assert_eq!(response.status(), 403);
    }
    assert_eq!(
        app.get("/api/v1/partners", &app.service_token())
            .await
            .status(),
        403
    );
    for (bad, field) in [
        (
            json!({"name": "P", "url": "ftp://partner.example/hook"}),
            "url",
        ),
        (json!({"name": "P", "url": "not a url"}), "url"),
        (
            json!({"name": "", "url": "https://partner.example/hook"}),
            "name",
        ),
        (
            json!({"name": "P", "url": "https://partner.example/hook", "event_types": ["order.shipped"]}),
            "event_types[0]",
        ),
        (
            json!({"name": "P", "url": "https://partner.example/hook", "event_types": []}),
            "event_types",
        ),
    ] {
        let response = app
            .post("/api/v1/partners", &app.admin_token(), &bad, None)
            .await;
        assert_eq!(response.status(), 422, "{bad}");
        assert_eq!(problem(response).await["errors"][0]["field"], field);
    }
    // The secret is shown once, at creation.
    let receiver = Receiver::start().await;
    let (id, secret) = register(&app, &receiver.url, json!(["payment.*"])).await;
    assert!(secret.starts_with("whsec_"));
    let read: Value = app
        .get(&format!("/api/v1/partners/{id}"), &app.admin_token())
        .await
        .json()
        .await
        .unwrap();
    assert!(read.get("secret").is_none());
    assert_eq!(read["event_types"], json!(["payment.*"]));
    // Update and delete.
    let response = app
        .client
        .patch(app.url(&format!("/api/v1/partners/{id}")))
        .bearer_auth(app.admin_token())
        .json(&json!({"name": "Renamed", "active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(
        (updated["name"].as_str(), updated["active"].as_bool()),
        (Some("Renamed"), Some(false))
    );
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/partners/{id}")))
        .bearer_auth(app.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        app.get(&format!("/api/v1/partners/{id}"), &app.admin_token())
            .await
            .status(),
        404
    );
}

async fn failures_are_retried_until_the_partner_answers(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        |c| c.webhooks.timeout = Duration::from_millis(500),
        |_| {},
    )
    .await;
    let receiver = Receiver::start().await;
    receiver.plan(&[
        Reply::Status(500),
        Reply::Hang(Duration::from_secs(2)),
        Reply::Status(302),
    ]);
    let (partner_id, secret) = register(&app, &receiver.url, json!(["order.created"])).await;
    app.create_order("alice").await;

    let delivery = settled_delivery(&app, &partner_id).await;
    assert_eq!(delivery["status"], "succeeded");
    assert_eq!(delivery["attempts"], 4);
    let log = delivery["attempt_log"].as_array().unwrap();
    assert_eq!(log[0]["status_code"], 500);
    assert_eq!(log[0]["response_excerpt"], "status 500");
    assert!(log[1]["status_code"].is_null());
    assert!(
        log[1]["error"].as_str().unwrap().starts_with("timed out"),
        "{}",
        log[1]
    );
    assert_eq!(
        log[2]["status_code"], 302,
        "a redirect is a failure, not followed"
    );
    assert_eq!(log[3]["status_code"], 200);
    // Every attempt was the same event, signed anew.
    let hits = receiver.hits();
    assert_eq!(hits.len(), 4);
    assert!(
        hits.iter()
            .all(|h| h.header("webhook-id") == hits[0].header("webhook-id"))
    );
    assert!(hits.iter().all(|h| h.body == hits[0].body));
    assert!(hits[3].verify(&secret).is_ok());
}

async fn retry_after_is_honoured(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    receiver.plan(&[Reply::RetryAfter(429, 1)]);
    let (partner_id, _) = register(&app, &receiver.url, json!(["order.created"])).await;
    app.create_order("alice").await;
    let delivery = settled_delivery(&app, &partner_id).await;
    assert_eq!(delivery["status"], "succeeded");
    let log = delivery["attempt_log"].as_array().unwrap();
    let started = |i: usize| {
        chrono::DateTime::parse_from_rfc3339(log[i]["started_at"].as_str().unwrap()).unwrap()
    };
    let waited = started(1) - started(0);
    // The schedule says 100 ms; the partner asked for a second.
    assert!(waited >= chrono::Duration::milliseconds(1000), "{waited}");
    assert_eq!(log[0]["status_code"], 429);
}

async fn a_refused_connection_is_retried_too(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        |c| {
            // Refused at once, again 50 ms later; then 2 s to bring the receiver up.
            c.webhooks.retry_schedule = vec![
                Duration::from_millis(50),
                Duration::from_secs(2),
                Duration::from_secs(2),
            ]
        },
        |_| {},
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/hook");
    let (partner_id, _) = register(&app, &url, json!(["*"])).await;
    app.create_order("alice").await;
    // Two refused connections...
    let mut attempts = 0;
    for _ in 0..200 {
        attempts = delivery_of(&app, &partner_id).await["attempts"]
            .as_i64()
            .unwrap();
        if attempts >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(attempts, 2);
    // ...then the partner comes back, and the third attempt arrives.
    let receiver = Receiver::start_on(tokio::net::TcpListener::bind(addr).await.unwrap()).await;
    receiver.wait_for(1).await;
    let delivery = settled_delivery(&app, &partner_id).await;
    assert_eq!(
        (delivery["status"].as_str(), delivery["attempts"].as_i64()),
        (Some("succeeded"), Some(3))
    );
    let log = delivery["attempt_log"].as_array().unwrap();
    assert!(
        log[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("could not connect"),
        "{}",
        log[0]
    );
}

async fn gone_disables_the_partner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    receiver.plan(&[Reply::Status(410)]);
    let (partner_id, _) = register(&app, &receiver.url, json!(["order.created"])).await;
    app.create_order("alice").await;
    let delivery = settled_delivery(&app, &partner_id).await;
    assert_eq!(
        (delivery["status"].as_str(), delivery["attempts"].as_i64()),
        (Some("failed"), Some(1))
    );

    let partner: Value = app
        .get(
            &format!("/api/v1/partners/{partner_id}"),
            &app.admin_token(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(partner["active"], false);
    assert!(partner["disabled_reason"].as_str().unwrap().contains("410"));
    let disabled = events::Entity::find()
        .filter(events::Column::EventType.eq("partner.disabled"))
        .filter(events::Column::SubjectId.eq(&partner_id))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(disabled, 1);
    // It receives nothing more.
    app.create_order("alice").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.hits().len(), 1);
}

async fn a_partner_failing_past_the_schedule_is_disabled(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        |c| {
            c.webhooks.retry_schedule = vec![Duration::from_millis(20)];
            c.webhooks.disable_after = 2;
        },
        |_| {},
    )
    .await;
    let receiver = Receiver::start().await;
    receiver.plan(&[Reply::Status(503); 10]);
    let (partner_id, _) = register(&app, &receiver.url, json!(["order.created"])).await;
    let watcher = Receiver::start().await;
    let (_, _) = register(&app, &watcher.url, json!(["partner.disabled"])).await;

    app.create_order("alice").await;
    let first = settled_delivery(&app, &partner_id).await;
    assert_eq!(
        (first["status"].as_str(), first["attempts"].as_i64()),
        (Some("failed"), Some(2))
    );
    let partner: Value = app
        .get(
            &format!("/api/v1/partners/{partner_id}"),
            &app.admin_token(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            partner["active"].as_bool(),
            partner["consecutive_failures"].as_i64()
        ),
        (Some(true), Some(1))
    );

    app.create_order("alice").await;
    // The second exhausted event disables it, and the watcher hears about it.
    let hits = watcher.wait_for(1).await;
    assert_eq!(hits[0].event_type(), "partner.disabled");
    assert_eq!(hits[0].json()["data"]["id"], partner_id.as_str());
    let partner: Value = app
        .get(
            &format!("/api/v1/partners/{partner_id}"),
            &app.admin_token(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(partner["active"], false);
    assert_eq!(receiver.hits().len(), 4);
}

async fn rotated_secrets_both_sign_during_the_grace_period(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let (partner_id, old) = register(&app, &receiver.url, json!(["order.created"])).await;
    let rotate = |grace: Value| {
        let app = &app;
        let partner_id = partner_id.clone();
        async move {
            let response = app
                .post(
                    &format!("/api/v1/partners/{partner_id}/rotate-secret"),
                    &app.admin_token(),
                    &grace,
                    None,
                )
                .await;
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            body["secret"].as_str().unwrap().to_owned()
        }
    };
    let new = rotate(json!({})).await;
    assert_ne!(new, old);
    app.create_order("alice").await;
    let hit = receiver.wait_for(1).await.remove(0);
    assert_eq!(hit.header("webhook-signature").split(' ').count(), 2);
    assert!(hit.verify(&old).is_ok() && hit.verify(&new).is_ok());
    assert_ne!(python_verifies(&old, &hit), Some(false));
    assert_ne!(python_verifies(&new, &hit), Some(false));

    // After the grace period only the newest secret signs.
    let newest = rotate(json!({"grace_seconds": 0})).await;
    app.create_order("alice").await;
    let hit = receiver.wait_for(2).await.remove(1);
    assert_eq!(hit.header("webhook-signature").split(' ').count(), 1);
    assert!(hit.verify(&newest).is_ok());
    assert!(hit.verify(&new).is_err() && hit.verify(&old).is_err());
}

async fn resend_and_recover(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.webhooks.retry_schedule = vec![], |_| {}).await;
    let receiver = Receiver::start().await;
    receiver.plan(&[Reply::Status(500), Reply::Status(500)]);
    let (partner_id, secret) = register(&app, &receiver.url, json!(["order.created"])).await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    app.create_order("alice").await;
    app.create_order("bob").await;
    receiver.wait_for(2).await;
    for _ in 0..100 {
        let failed: Value = app
            .get(
                &format!("/api/v1/partners/{partner_id}/deliveries?status=failed"),
                &app.admin_token(),
            )
            .await
            .json()
            .await
            .unwrap();
        if failed["data"].as_array().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The partner is fixed: recover everything that failed since then.
    let response = app
        .post(
            &format!("/api/v1/partners/{partner_id}/recover"),
            &app.admin_token(),
            &json!({"since": since}),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["recovered"], 2);
    let hits = receiver.wait_for(4).await;
    assert!(hits[2..].iter().all(|h| h.verify(&secret).is_ok()));

    // Resend one event: the same webhook-id arrives again, as a new delivery.
    let event_id = hits[3].header("webhook-id").to_owned();
    let response = app
        .post(
            &format!("/api/v1/partners/{partner_id}/resend"),
            &app.admin_token(),
            &json!({"event_id": event_id}),
            Some("resend-1"),
        )
        .await;
    assert_eq!(response.status(), 201);
    let hits = receiver.wait_for(5).await;
    assert_eq!(hits[4].header("webhook-id"), event_id);
    let unknown = app
        .post(
            &format!("/api/v1/partners/{partner_id}/resend"),
            &app.admin_token(),
            &json!({"event_id": "evt_00000000000000000000000000000000"}),
            None,
        )
        .await;
    // A well-formed id of no event: not found (a malformed one is a 422).
    assert_eq!(unknown.status(), 404);
    let malformed = app
        .post(
            &format!("/api/v1/partners/{partner_id}/resend"),
            &app.admin_token(),
            &json!({"event_id": "not-an-event"}),
            None,
        )
        .await;
    assert_eq!(malformed.status(), 422);
}

async fn events_written_while_no_worker_runs_are_delivered_later(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.webhooks.enabled = false, |_| {}).await;
    let receiver = Receiver::start().await;
    register(&app, &receiver.url, json!(["*"])).await;
    pay_an_order(&app).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.hits().is_empty(), "no worker, nothing sent");

    // A worker starts (a restart, another replica): everything recorded goes out.
    let stop = CancellationToken::new();
    start_worker(&app, &stop);
    let hits = receiver.wait_for(5).await;
    assert_eq!(hits.len(), 5);
    stop.cancel();
}

async fn a_worker_killed_mid_send_leaves_nothing_behind(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        |c| {
            c.webhooks.enabled = false;
            c.webhooks.timeout = Duration::from_millis(400);
        },
        |_| {},
    )
    .await;
    let receiver = Receiver::start().await;
    receiver.plan(&[Reply::Hang(Duration::from_secs(5))]);
    let (partner_id, _) = register(&app, &receiver.url, json!(["order.created"])).await;
    app.create_order("alice").await;

    let first = start_worker(&app, &CancellationToken::new());
    receiver.wait_for(1).await;
    first.abort(); // killed mid-send: the claim stays, nothing is recorded
    let _ = first.await;
    let attempts = delivery_attempts::Entity::find()
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(attempts, 0);

    // Another worker takes the delivery over once the dead one's lease runs out.
    let stop = CancellationToken::new();
    start_worker(&app, &stop);
    let delivery = settled_delivery(&app, &partner_id).await;
    assert_eq!(
        (delivery["status"].as_str(), delivery["attempts"].as_i64()),
        (Some("succeeded"), Some(1))
    );
    assert_eq!(
        receiver.hits().len(),
        2,
        "the unanswered request and the one that succeeded"
    );
    stop.cancel();
}

/// Attempts are recorded in batches: a burst where one partner answers 200, one 500 and one
/// 410 must leave every delivery where its own answer puts it, with its attempt row.
async fn a_burst_of_mixed_answers_is_recorded_attempt_by_attempt(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        |c| {
            c.webhooks.enabled = false;
            c.webhooks.retry_schedule = vec![Duration::from_secs(3600)];
            // Every 500 is attempted here; backing off a partner has its own test.
            c.webhooks.partner_backoff_after = 1000;
        },
        |_| {},
    )
    .await;
    const ORDERS: usize = 40;
    let ok = Receiver::start().await;
    let flaky = Receiver::start().await;
    flaky.plan(&[Reply::Status(500); ORDERS]);
    let gone = Receiver::start().await;
    gone.plan(&[Reply::Status(410); ORDERS]);
    let (ok_id, ok_secret) = register(&app, &ok.url, json!(["order.created"])).await;
    let (flaky_id, _) = register(&app, &flaky.url, json!(["order.created"])).await;
    let (gone_id, _) = register(&app, &gone.url, json!(["order.created"])).await;
    for _ in 0..ORDERS {
        app.create_order("alice").await;
    }

    let stop = CancellationToken::new();
    start_worker(&app, &stop);
    let of = |partner: &str| {
        deliveries::Entity::find()
            .filter(deliveries::Column::PartnerId.eq(partner.to_owned()))
            .all(&app.db)
    };
    // Settled: nothing of the three is left claimed.
    let mut settled = false;
    for _ in 0..250 {
        let all = deliveries::Entity::find().all(&app.db).await.unwrap();
        if all.iter().all(|d| d.locked_until.is_none()) && ok.hits().len() == ORDERS {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(settled, "the burst was not recorded");
    stop.cancel();

    let attempts_of = |delivery: &str| {
        delivery_attempts::Entity::find()
            .filter(delivery_attempts::Column::DeliveryId.eq(delivery.to_owned()))
            .all(&app.db)
    };
    // 200: succeeded at the first attempt, each signed for its partner.
    let delivered = of(&ok_id).await.unwrap();
    assert_eq!(delivered.len(), ORDERS);
    for d in &delivered {
        assert_eq!((d.status.as_str(), d.attempts), ("succeeded", 1), "{d:?}");
        let log = attempts_of(&d.id).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!((log[0].attempt, log[0].status_code), (1, Some(200)));
    }
    assert!(ok.hits().iter().all(|h| h.verify(&ok_secret).is_ok()));
    let ids: std::collections::HashSet<_> = ok
        .hits()
        .iter()
        .map(|h| h.header("webhook-id").to_owned())
        .collect();
    assert_eq!(ids.len(), ORDERS, "each event once");

    // 500: one attempt each, waiting for the next one an hour later.
    let waiting = of(&flaky_id).await.unwrap();
    assert_eq!(waiting.len(), ORDERS);
    let soonest = chrono::Utc::now() + chrono::Duration::minutes(50);
    for d in &waiting {
        assert_eq!(
            (d.status.as_str(), d.attempts, d.last_status_code),
            ("pending", 1, Some(500)),
            "{d:?}"
        );
        assert!(d.next_attempt_at > soonest, "{d:?}");
        assert_eq!(d.last_error.as_deref(), Some("answered 500"));
        let log = attempts_of(&d.id).await.unwrap();
        assert_eq!((log.len(), log[0].status_code), (1, Some(500)));
    }
    assert_eq!(flaky.hits().len(), ORDERS);

    // 410: the partner is disabled once; what it answered is recorded, the rest canceled.
    let ended = of(&gone_id).await.unwrap();
    let failed: Vec<_> = ended.iter().filter(|d| d.status == "failed").collect();
    assert!(!failed.is_empty());
    assert!(
        failed
            .iter()
            .all(|d| d.attempts == 1 && d.last_status_code == Some(410))
    );
    // Requests already in flight when the partner was disabled find their deliveries
    // canceled, and leave them so; what they were answered is counted and logged all the same.
    let canceled: Vec<_> = ended.iter().filter(|d| d.status != "failed").collect();
    assert!(
        canceled.iter().all(|d| d.status == "canceled"
            && d.locked_until.is_none()
            && ((d.attempts, d.last_status_code) == (0, None)
                || (d.attempts, d.last_status_code) == (1, Some(410)))),
        "{ended:?}"
    );
    let sent_while_canceled = canceled.iter().filter(|d| d.attempts == 1).count();
    assert_eq!(gone.hits().len(), failed.len() + sent_while_canceled);
    let disabled = events::Entity::find()
        .filter(events::Column::EventType.eq("partner.disabled"))
        .filter(events::Column::SubjectId.eq(&gone_id))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(disabled, 1);

    let rows = delivery_attempts::Entity::find()
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(
        rows as usize,
        ok.hits().len() + flaky.hits().len() + gone.hits().len(),
        "one row for every request a partner received"
    );
}

/// A worker claims ahead of what it sends; stopped, it finishes what is in flight and gives
/// back the rest at once, for another worker to send without waiting for a lease to run out.
async fn a_stopping_worker_gives_back_what_it_did_not_send(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        |c| {
            c.webhooks.enabled = false;
            c.webhooks.concurrency = 1;
        },
        |_| {},
    )
    .await;
    let receiver = Receiver::start().await;
    receiver.plan(&[Reply::Hang(Duration::from_millis(600))]);
    let (partner_id, _) = register(&app, &receiver.url, json!(["order.created"])).await;
    for _ in 0..3 {
        app.create_order("alice").await;
    }
    let stop = CancellationToken::new();
    let worker = start_worker(&app, &stop);
    receiver.wait_for(1).await;
    let held = deliveries::Entity::find()
        .filter(deliveries::Column::LockedUntil.is_not_null())
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(held, 2, "one in flight and one claimed ahead");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), worker)
        .await
        .expect("the worker stops once its request is answered")
        .unwrap();

    let all = deliveries::Entity::find()
        .filter(deliveries::Column::PartnerId.eq(partner_id.clone()))
        .all(&app.db)
        .await
        .unwrap();
    let sent: Vec<_> = all.iter().filter(|d| d.status == "succeeded").collect();
    assert_eq!(
        sent.len(),
        1,
        "the request in flight was finished and recorded"
    );
    assert!(
        all.iter()
            .filter(|d| d.status == "pending")
            .all(|d| d.locked_until.is_none() && d.attempts == 0),
        "{all:?}"
    );
    assert_eq!(receiver.hits().len(), 1);

    // Another worker sends the rest at once.
    let stop = CancellationToken::new();
    start_worker(&app, &stop);
    tokio::time::timeout(Duration::from_secs(2), receiver.wait_for(3))
        .await
        .expect("sent without waiting for a lease");
    stop.cancel();
}

/// Two payment-ms replicas on one PostgreSQL database deliver every event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs PostgreSQL: build and run the tests with TEST_DATABASE_URL set (scripts/test does)"
)]
async fn two_replicas_never_send_an_attempt_twice() {
    let db = TestDb::create(Backend::Postgres).await;
    let url = db.url.clone();
    let app = TestApp::spawn_on(db, |_| {}, |_| {}).await;
    // A second replica on the same database, with its own worker.
    let env = testkit::helpers::test_env(&url);
    let mut config = payment_ms::Config::from_source(&env).unwrap();
    config.addr = "127.0.0.1:0".parse().unwrap();
    let second = payment_ms::Application::build(config).await.unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(second.run_until(stop.clone()));

    let receiver = Receiver::start().await;
    register(&app, &receiver.url, json!(["order.created"])).await;
    const N: usize = 60;
    let token = app.service_token();
    let bodies: Vec<Value> = (0..N)
        .map(|i| testkit::helpers::order_body(&format!("user{i}")))
        .collect();
    let creations = bodies
        .iter()
        .map(|body| app.post("/api/v1/orders", &token, body, None));
    for response in futures::future::join_all(creations).await {
        assert_eq!(response.status(), 201);
    }
    let hits = receiver.wait_for(N).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut ids: Vec<String> = receiver
        .hits()
        .iter()
        .map(|h| h.header("webhook-id").to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((hits.len(), ids.len(), receiver.hits().len()), (N, N, N));
    let attempts = delivery_attempts::Entity::find()
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(attempts as usize, N);
    let done = deliveries::Entity::find()
        .filter(deliveries::Column::Status.eq("succeeded"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(done as usize, N);
    stop.cancel();
}

/// SSRF: internal addresses are refused unless allowed.
#[tokio::test]
async fn partner_urls_into_our_network_are_refused() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        |c| c.webhooks.allowed_cidrs = vec![],
        |_| {},
    )
    .await;
    for url in [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:8080/hook",
    ] {
        let response = app
            .post(
                "/api/v1/partners",
                &app.admin_token(),
                &json!({"name": "x", "url": url}),
                None,
            )
            .await;
        assert_eq!(response.status(), 422, "{url}");
        let problem = problem(response).await;
        assert_eq!(problem["errors"][0]["field"], "url");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("non-public"),
            "{problem}"
        );
    }
    // An IPv6 literal is not a URL this API takes at all (a host name or IPv4 address only):
    // refused by its form, before any address is looked at.
    let response = app
        .post(
            "/api/v1/partners",
            &app.admin_token(),
            &json!({"name": "x", "url": "http://[::1]/hook"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(problem(response).await["errors"][0]["field"], "url");
    let open = TestApp::spawn_with(
        Backend::Sqlite,
        |c| c.webhooks.allowed_cidrs = vec!["127.0.0.0/8".parse().unwrap()],
        |_| {},
    )
    .await;
    for url in ["http://127.0.0.1/hook", "http://localhost:8080/hook"] {
        let response = open
            .post(
                "/api/v1/partners",
                &open.admin_token(),
                &json!({"name": "x", "url": url}),
                None,
            )
            .await;
        assert_eq!(response.status(), 201, "{url}");
    }
    let response = open
        .post(
            "/api/v1/partners",
            &open.admin_token(),
            &json!({"name": "x", "url": "http://10.0.0.1/hook"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 422);
}

/// A partner registered while loopback was allowed is still refused at send time once it no
/// longer is: the guard runs on every send, after DNS.
#[tokio::test]
async fn the_guard_also_runs_at_send_time() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        |c| c.webhooks.allowed_cidrs = vec![],
        |_| {},
    )
    .await;
    let receiver = Receiver::start().await;
    // Written straight into the table, as if allowed when it was registered.
    let partner = payment_ms::webhooks::partners::new_partner(
        "sneaky",
        &receiver.url.replace("127.0.0.1", "localhost"),
        &["*".to_owned()],
        app.ms.core.now(),
    );
    use sea_orm::ActiveModelTrait;
    payment_ms::webhooks::entities::partners::ActiveModel::from(partner.clone())
        .insert(&app.db)
        .await
        .unwrap();
    app.create_order("alice").await;
    let delivery = settled_delivery(&app, &partner.id).await;
    assert_eq!(delivery["status"], "failed");
    assert!(receiver.hits().is_empty());
    assert!(
        delivery["attempt_log"][0]["error"]
            .as_str()
            .unwrap()
            .contains("no public address"),
        "{delivery}"
    );
}

/// `N8N_WEBHOOK_URL` is a built-in partner receiving every event type, signed the same way.
#[tokio::test]
async fn the_n8n_hook_receives_every_event() {
    let receiver = Receiver::start().await;
    let secret = shared::signing::WebhookSecret::generate();
    let hook = payment_ms::config::N8nHook {
        url: receiver.url.parse().unwrap(),
        secret: secret.clone().into(),
    };
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.webhooks.n8n = Some(hook), |_| {}).await;
    pay_an_order(&app).await;
    let hits = receiver.wait_for(5).await;
    let mut types: Vec<String> = hits.iter().map(|h| h.event_type()).collect();
    types.sort();
    assert_eq!(
        types,
        [
            "order.created",
            "order.paid",
            "order.payment_pending",
            "payment.created",
            "payment.succeeded"
        ]
    );
    assert!(hits.iter().all(|h| h.verify(&secret).is_ok()));

    let partners: Value = app
        .get("/api/v1/partners", &app.admin_token())
        .await
        .json()
        .await
        .unwrap();
    let n8n = &partners["data"][0];
    assert_eq!(
        (n8n["name"].as_str(), n8n["builtin"].as_bool()),
        (Some("n8n"), Some(true))
    );
    assert!(n8n.get("secret").is_none());
    let id = n8n["id"].as_str().unwrap();
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/partners/{id}")))
        .bearer_auth(app.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    assert_eq!(problem(response).await["code"], "partner_builtin");
}
