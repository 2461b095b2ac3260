//! Events between services on a real nats-server (`TEST_NATS_URL`): the outbox relayed to
//! JetStream as CloudEvents, other services' events consumed through the inbox, the dead
//! letters and their replay. Each test has streams and subjects of its own.

use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use testkit::helpers::{Backend, TestApp, eventually};
use testkit::nats::{Names, jetstream, nats_url, publish, read_stream, source_stream};

use payment_ms::bus::entities::event_publications;
use payment_ms::events::entities::events;
use payment_ms::inbox::entities::inbox;

use super::inbox::cloud_event;

macro_rules! nats_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(nats_tests), ignore = "needs NATS: build and run the tests with TEST_NATS_URL set (scripts/test does)")]
                async fn $name() {
                    super::$name(testkit::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(all(nats_tests, postgres_tests)), ignore = "needs NATS and PostgreSQL: TEST_NATS_URL and TEST_DATABASE_URL (scripts/test sets both)")]
                async fn $name() {
                    super::$name(testkit::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

nats_tests!(
    events_are_relayed_as_cloudevents,
    events_from_other_services_are_handled_once,
    bad_and_failing_events_become_dead_letters_an_admin_replays,
);

async fn spawn(
    backend: Backend,
    names: &Names,
    domains: &[&str],
    extra: &[(&str, &str)],
) -> TestApp {
    let config = names.config(&nats_url(), domains, extra);
    TestApp::spawn_with(backend, move |c| c.nats = Some(config), |_| {}).await
}

async fn replay_letter(app: &TestApp, admin: &str, id: &str) -> reqwest::Response {
    let path = format!("/api/v1/dead-letters/{id}/replay");
    app.post(&path, admin, &json!({}), None).await
}

/// Waits until `check` holds, for at most `within`.
async fn events_are_relayed_as_cloudevents(backend: Backend) {
    let names = Names::new();
    let js = jetstream(&nats_url()).await;
    let app = spawn(backend, &names, &[], &[]).await;
    let (order, payment) = app.order_and_payment("u_nats").await;
    let pay_id = payment["id"].as_str().unwrap();
    app.press(pay_id, "pay").await;
    app.verify("u_nats", pay_id).await;
    let order_id = order["id"].as_str().unwrap();

    // order.created, payment.created, order.payment_pending, payment.succeeded, order.paid
    let read = read_stream(&js, &names.stream(), 5, Duration::from_secs(15)).await;
    assert_eq!(read.len(), 5, "{read:?}");
    let recorded = events::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(recorded.len(), 5);
    for message in &read {
        let body = &message.body;
        let id = body["id"].as_str().unwrap();
        let event = recorded
            .iter()
            .find(|e| e.id == id)
            .expect("a recorded event");
        assert_eq!(
            message.msg_id.as_deref(),
            Some(id),
            "Nats-Msg-Id is the event id"
        );
        assert_eq!(
            message.content_type.as_deref(),
            Some("application/cloudevents+json")
        );
        assert_eq!(
            message.subject,
            format!("{}.{}", names.prefix(), event.event_type)
        );
        assert_eq!(body["specversion"], "1.0");
        assert_eq!(body["source"], "payment-ms");
        assert_eq!(body["type"], event.event_type.as_str());
        assert_eq!(body["subject"], event.subject_id.as_str());
        assert_eq!(body["datacontenttype"], "application/json");
        assert_eq!(body["dataversion"], "1");
        assert_eq!(body["data"], event.data);
        assert!(
            body["correlationid"]
                .as_str()
                .is_some_and(|c| !c.is_empty()),
            "each API request's id is its events' correlation id"
        );
        assert_eq!(
            body["correlationid"].as_str(),
            event.correlation_id.as_deref()
        );
        assert!(body["time"].as_str().unwrap().ends_with('Z'));
    }
    let order_events: Vec<&Value> = read
        .iter()
        .map(|m| &m.body)
        .filter(|b| b["subject"] == order_id)
        .collect();
    assert_eq!(order_events.len(), 3);
    assert_eq!(order_events[0]["type"], "order.created");
    assert_eq!(order_events[0]["sequence"], 1);
    assert_eq!(order_events[1]["type"], "order.payment_pending");
    assert_eq!(order_events[1]["sequence"], 2);
    assert_eq!(order_events[2]["type"], "order.paid");
    assert_eq!(order_events[2]["sequence"], 3);
    assert_eq!(order_events[2]["data"]["status"], "paid");

    // Each publication ends published, with the stream's sequence.
    eventually(
        Duration::from_secs(5),
        "publications marked published",
        || async {
            event_publications::Entity::find()
                .all(&app.db)
                .await
                .unwrap()
                .iter()
                .all(|p| p.status == "published" && p.stream_sequence.is_some())
        },
    )
    .await;
    let mut sequences: Vec<i64> = event_publications::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .iter()
        .filter_map(|p| p.stream_sequence)
        .collect();
    sequences.sort();
    assert_eq!(sequences, [1, 2, 3, 4, 5]);
    // (Counters are the whole test process's: other tests add to them.)
    let metrics = app.metrics(&app.payment_ms).await;
    for name in [
        "events_relay_published_total",
        "events_relay_commit_to_ack_seconds",
        "events_relay_lag_seconds",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
    let ready = app.readiness().await;
    assert_eq!(ready["nats"], "connected");
    names.clean(&js, &[]).await;
}

async fn events_from_other_services_are_handled_once(backend: Backend) {
    let names = Names::new();
    let js = jetstream(&nats_url()).await;
    source_stream(&js, &names, "users").await;
    source_stream(&js, &names, "orders").await;
    let app = spawn(backend, &names, &["users", "orders"], &[]).await;
    let (open, _) = app.order_and_payment("u_left").await;

    let deleted = cloud_event("usr-del-1", "user.deleted", json!({"user_id": "u_left"}));
    // Published twice (a sender that retried after a lost ack), and once more over HTTP.
    for _ in 0..2 {
        publish(&js, names.source_subject("users", "user.deleted"), &deleted).await;
    }
    let created = cloud_event(
        "ord-1",
        "order.created",
        json!({"order_id": "ext-1", "user_id": "u_new", "currency": "usd",
               "items": [{"sku": "a", "name": "A", "quantity": 2, "unit_price": 500}]}),
    );
    publish(
        &js,
        names.source_subject("orders", "order.created"),
        &created,
    )
    .await;

    eventually(
        Duration::from_secs(15),
        "both events in the inbox",
        || async { inbox::Entity::find().all(&app.db).await.unwrap().len() == 2 },
    )
    .await;
    let open_id = open["id"].as_str().unwrap();
    assert_eq!(
        app.events_of(open_id).await,
        [
            "order.created",
            "order.payment_pending",
            "order.updated",
            "order.canceled"
        ]
    );
    let entries = inbox::Entity::find().all(&app.db).await.unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e.door == "nats" && e.outcome == "applied")
    );

    let response = app
        .client
        .post(app.url("/api/v1/events"))
        .bearer_auth(app.service_token())
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&deleted).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.json::<Value>().await.unwrap()["duplicate"], true);

    // Give a redelivery time to arrive; still one effect each.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.events_of(open_id).await,
        [
            "order.created",
            "order.payment_pending",
            "order.updated",
            "order.canceled"
        ]
    );
    let list: Value = app
        .get("/api/v1/orders?user_id=u_new", &app.service_token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["reference"], "ext-1");
    let metrics = app.metrics(&app.payment_ms).await;
    assert!(metrics.contains("inbox_nats_deliveries_total"), "{metrics}");
    assert!(
        metrics.contains(r#"inbox_events_total{door="nats",outcome="duplicate"}"#),
        "{metrics}"
    );
    names.clean(&js, &["users", "orders"]).await;
}

async fn bad_and_failing_events_become_dead_letters_an_admin_replays(backend: Backend) {
    let names = Names::new();
    let js = jetstream(&nats_url()).await;
    source_stream(&js, &names, "users").await;
    let app = spawn(backend, &names, &["users"], &[("EVENTS_MAX_DELIVER", "3")]).await;

    // Not JSON: to the dead letters at its first delivery.
    js.publish(
        names.source_subject("users", "user.deleted"),
        "{oops".into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let admin = app.admin_token();
    let letters = || async {
        let page: Value = app
            .get("/api/v1/dead-letters", &admin)
            .await
            .json()
            .await
            .unwrap();
        page["data"].as_array().unwrap().clone()
    };
    eventually(Duration::from_secs(10), "a dead letter", || async {
        letters().await.len() == 1
    })
    .await;
    let letter = letters().await[0].clone();
    assert_eq!(letter["status"], "dead");
    assert_eq!(letter["deliveries"], 1);
    assert_eq!(letter["door"], "nats");
    assert_eq!(letter["body"], "{oops");
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("not a JSON CloudEvent"),
        "{letter}"
    );
    let id = letter["id"].as_str().unwrap();
    // It can never be handled: the replay says so, and keeps it dead.
    let replay = replay_letter(&app, &admin, id).await;
    assert_eq!(replay.status(), 422);
    let read: Value = app
        .get(&format!("/api/v1/dead-letters/{id}"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["status"], "dead");
    assert_eq!(read["deliveries"], 2);

    // A user's deletion while the database refuses its inbox row: redelivered with a delay,
    // three deliveries in all, then dead; replayed once the cause is gone, it is applied.
    let (open, _) = app.order_and_payment("u_gone").await;
    let fail = "CREATE TRIGGER refuse_inbox BEFORE INSERT ON inbox BEGIN SELECT RAISE(FAIL, 'inbox refused'); END";
    let fail_pg = [
        "CREATE FUNCTION refuse_inbox() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'inbox refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_inbox BEFORE INSERT ON inbox FOR EACH ROW EXECUTE FUNCTION refuse_inbox()",
    ];
    use sea_orm::ConnectionTrait;
    match backend {
        Backend::Sqlite => {
            app.db.execute_unprepared(fail).await.unwrap();
        }
        Backend::Postgres => {
            for sql in fail_pg {
                app.db.execute_unprepared(sql).await.unwrap();
            }
        }
    }
    let deleted = cloud_event("usr-del-9", "user.deleted", json!({"user_id": "u_gone"}));
    publish(&js, names.source_subject("users", "user.deleted"), &deleted).await;
    eventually(Duration::from_secs(15), "a second dead letter", || async {
        letters().await.len() == 2
    })
    .await;
    let letter = letters().await[0].clone();
    assert_eq!(letter["message_id"], "usr-del-9");
    assert_eq!(letter["type"], "user.deleted");
    assert_eq!(letter["deliveries"], 3);
    let metrics = app.metrics(&app.payment_ms).await;
    assert!(
        metrics.contains("inbox_nats_redeliveries_total"),
        "{metrics}"
    );
    assert!(metrics.contains("inbox_dead_letters_pending"), "{metrics}");
    // Its order was canceled at the first delivery (the effect is idempotent); only the inbox
    // row was refused.
    let open_id = open["id"].as_str().unwrap();
    assert_eq!(
        app.events_of(open_id).await,
        [
            "order.created",
            "order.payment_pending",
            "order.updated",
            "order.canceled"
        ]
    );

    app.db
        .execute_unprepared(match backend {
            Backend::Sqlite => "DROP TRIGGER refuse_inbox",
            Backend::Postgres => "DROP TRIGGER refuse_inbox ON inbox",
        })
        .await
        .unwrap();
    let id = letter["id"].as_str().unwrap();
    let replay = replay_letter(&app, &admin, id).await;
    assert_eq!(replay.status(), 200);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["dead_letter"]["status"], "replayed");
    assert_eq!(body["event"]["outcome"], "applied");
    assert_eq!(body["event"]["duplicate"], false);
    let again = replay_letter(&app, &admin, id).await;
    assert_eq!(again.status(), 409);
    let entry = inbox::Entity::find()
        .filter(inbox::Column::MessageId.eq("usr-del-9"))
        .one(&app.db)
        .await
        .unwrap()
        .expect("in the inbox");
    assert_eq!(entry.door, "nats");
    assert_eq!(
        app.events_of(open_id).await,
        [
            "order.created",
            "order.payment_pending",
            "order.updated",
            "order.canceled"
        ]
    );
    names.clean(&js, &["users"]).await;
}
