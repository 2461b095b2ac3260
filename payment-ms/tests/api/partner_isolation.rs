//! One partner cannot hurt the others' deliveries or the queue: a partner that never answers
//! holds its own few sending slots, one that keeps failing is backed off, whatever a partner
//! answers is recorded, and a delivery whose outcome cannot be recorded is not sent forever.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use payment_ms::{
    webhooks::entities::deliveries, webhooks::entities::delivery_attempts,
    webhooks::entities::partners,
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::webhooks::start_worker;
use testkit::helpers::{Backend, TestApp};
use testkit::receiver::{Receiver, Reply};

testkit::db_tests!(
    a_partner_that_never_answers_does_not_delay_the_others,
    a_partner_that_keeps_failing_is_backed_off_then_probed,
    whatever_a_partner_answers_is_recorded_once,
    a_delivery_whose_outcome_cannot_be_recorded_is_stopped,
);

async fn register(app: &TestApp, url: &str) -> String {
    crate::webhooks::register(app, url, json!(["order.created"]))
        .await
        .0
}

async fn attempts_of_partner(app: &TestApp, partner_id: &str) -> u64 {
    let ids: Vec<String> = deliveries::Entity::find()
        .filter(deliveries::Column::PartnerId.eq(partner_id))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    delivery_attempts::Entity::find()
        .filter(delivery_attempts::Column::DeliveryId.is_in(ids))
        .count(&app.db)
        .await
        .unwrap()
}

async fn a_partner_that_never_answers_does_not_delay_the_others(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        |c| {
            c.webhooks.enabled = false;
            c.webhooks.concurrency = 4;
            c.webhooks.partner_concurrency = 2;
            c.webhooks.timeout = Duration::from_secs(5);
            c.webhooks.retry_schedule = vec![Duration::from_secs(3600)];
        },
        |_| {},
    )
    .await;
    const ORDERS: usize = 30;
    let healthy = Receiver::start().await;
    let black_hole = Receiver::start().await;
    black_hole.plan(&[Reply::Hang(Duration::from_secs(60)); ORDERS]);
    let healthy_id = register(&app, &healthy.url).await;
    let black_hole_id = register(&app, &black_hole.url).await;
    for _ in 0..ORDERS {
        app.create_order("alice").await;
    }
    let stop = CancellationToken::new();
    start_worker(&app, &stop);

    // Every healthy delivery is made while the black hole's first requests are still
    // waiting for an answer (none of its attempts has ended, so none is recorded)...
    healthy.wait_for(ORDERS).await;
    assert_eq!(attempts_of_partner(&app, &black_hole_id).await, 0);
    // ...and the black hole holds only its own two slots of the four.
    assert_eq!(black_hole.hits().len(), 2);
    let mut delivered = 0;
    for _ in 0..100 {
        delivered = deliveries::Entity::find()
            .filter(deliveries::Column::PartnerId.eq(&healthy_id))
            .filter(deliveries::Column::Status.eq("succeeded"))
            .count(&app.db)
            .await
            .unwrap();
        if delivered == ORDERS as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(delivered, ORDERS as u64);
    stop.cancel();
}

async fn a_partner_that_keeps_failing_is_backed_off_then_probed(backend: Backend) {
    let backoff = Duration::from_secs(3);
    let app = TestApp::spawn_with(
        backend,
        |c| {
            c.webhooks.enabled = false;
            c.webhooks.partner_concurrency = 1;
            c.webhooks.partner_backoff_after = 3;
            c.webhooks.partner_backoff = backoff;
            c.webhooks.partner_backoff_max = backoff;
            c.webhooks.retry_schedule = vec![Duration::from_millis(50); 100];
        },
        |_| {},
    )
    .await;
    const ORDERS: usize = 6;
    let receiver = Receiver::start().await;
    receiver.plan(&[Reply::Status(503); 1000]);
    let partner_id = register(&app, &receiver.url).await;
    for _ in 0..ORDERS {
        app.create_order("alice").await;
    }
    let stop = CancellationToken::new();
    start_worker(&app, &stop);
    let partner = || async {
        partners::Entity::find_by_id(&partner_id)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
    };

    // Attempts that keep failing back the partner off...
    let mut backed_off = false;
    for _ in 0..200 {
        if partner().await.backoff_until.is_some() {
            backed_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(backed_off, "the partner was never backed off");
    // ...and then it gets nothing during the back-off but what was already claimed or being
    // claimed as it began (its room twice, and one in flight): without the back-off, six
    // deliveries retried every 50 ms would have made dozens of requests in the same time. The
    // window watched ends a second before the back-off does, so a slow machine cannot slide
    // the probe that follows into it.
    let before = receiver.hits().len();
    let window = backoff - Duration::from_secs(1);
    tokio::time::sleep(window).await;
    let during = receiver.hits().len() - before;
    assert!(
        during <= 3,
        "{during} requests in the first {window:?} of a back-off of {backoff:?}"
    );
    assert!(partner().await.failing_attempts >= 3);

    // The partner recovers: the first probe answered ends the back-off, and the rest follows.
    receiver.clear_plan();
    let mut healthy = None;
    for _ in 0..500 {
        let p = partner().await;
        let pending = deliveries::Entity::find()
            .filter(deliveries::Column::Status.ne("succeeded"))
            .count(&app.db)
            .await
            .unwrap();
        if pending == 0 && p.failing_attempts == 0 {
            healthy = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let healthy = healthy.expect("every delivery made and the partner healthy again");
    assert_eq!(healthy.backoff_until, None);
    assert!(healthy.active);
    // The admin sees it too.
    let out: Value = app
        .get(
            &format!("/api/v1/partners/{partner_id}"),
            &app.admin_token(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(out["backoff_until"], Value::Null);
    assert_eq!(out["failing_attempts"], 0);
    stop.cancel();
}

/// A partner endpoint answering 200 with `body` and `headers`.
async fn answering(
    body: fn() -> Body,
    headers: &'static [(&'static str, &'static [u8])],
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new().route(
        "/hook",
        post(move |_: Bytes| async move {
            let mut response = Response::new(body());
            for (name, value) in headers {
                response
                    .headers_mut()
                    .append(*name, HeaderValue::from_bytes(value).unwrap());
            }
            *response.status_mut() = StatusCode::OK;
            response
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn whatever_a_partner_answers_is_recorded_once(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        |c| {
            c.webhooks.enabled = false;
            c.webhooks.retry_schedule = vec![Duration::from_millis(100); 5];
        },
        |_| {},
    )
    .await;
    let nul = answering(|| Body::from(&b"ok\0\xff\xfe done"[..]), &[]).await;
    let huge = answering(|| Body::from(vec![b'x'; 10 * 1024 * 1024]), &[]).await;
    let endless = answering(
        || {
            let chunks = futures::stream::repeat_with(|| {
                Ok::<_, Infallible>(Bytes::from_static(&[0u8, b'y', 0xff, b'\n']))
            });
            Body::from_stream(chunks)
        },
        &[],
    )
    .await;
    let odd_headers = answering(
        || Body::from("fine"),
        &[
            ("retry-after", b"\xff\xfe soon"),
            ("x-odd", b"\x80\x81 obs-text"),
            ("x-long", &[b'z'; 8000]),
        ],
    )
    .await;
    let urls = [&nul, &huge, &endless, &odd_headers];
    let mut partner_ids = Vec::new();
    for url in urls {
        partner_ids.push(register(&app, url).await);
    }
    app.create_order("alice").await;
    let stop = CancellationToken::new();
    start_worker(&app, &stop);

    let mut settled = Vec::new();
    for _ in 0..250 {
        settled = deliveries::Entity::find()
            .filter(deliveries::Column::Status.ne("pending"))
            .all(&app.db)
            .await
            .unwrap();
        if settled.len() == urls.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert_eq!(settled.len(), urls.len(), "every delivery finished");
    for delivery in &settled {
        assert_eq!(
            (
                delivery.status.as_str(),
                delivery.attempts,
                delivery.last_status_code
            ),
            ("succeeded", 1, Some(200)),
            "{delivery:?}"
        );
        let log = delivery_attempts::Entity::find()
            .filter(delivery_attempts::Column::DeliveryId.eq(&delivery.id))
            .all(&app.db)
            .await
            .unwrap();
        assert_eq!(log.len(), 1, "{log:?}");
        let excerpt = log[0].response_excerpt.clone().unwrap_or_default();
        assert!(excerpt.len() <= 1024 + 3 * 1024 / 2, "{}", excerpt.len());
        assert!(!excerpt.contains('\0'), "{excerpt:?}");
        if delivery.partner_id == partner_ids[0] {
            assert_eq!(excerpt, "ok\u{fffd}\u{fffd}\u{fffd} done");
        }
        if delivery.partner_id == partner_ids[2] {
            assert!(excerpt.starts_with("\u{fffd}y\u{fffd}\n"), "{excerpt:?}");
        }
    }
    // The partners' answers are readable through the API as they were recorded.
    let list: Value = app
        .get(
            &format!("/api/v1/partners/{}/deliveries", partner_ids[0]),
            &app.admin_token(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["status"], "succeeded");
    stop.cancel();
}

async fn a_delivery_whose_outcome_cannot_be_recorded_is_stopped(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        |c| {
            c.webhooks.enabled = false;
            // A lease of two timeouts and a second: 2 s.
            c.webhooks.timeout = Duration::from_millis(500);
            c.webhooks.retry_schedule = vec![Duration::from_secs(3600)];
        },
        |_| {},
    )
    .await;
    let receiver = Receiver::start().await;
    let partner_id = register(&app, &receiver.url).await;
    app.create_order("alice").await;
    // Whatever goes wrong, recording the attempt fails: a broken disk, a bug.
    let refuse = match backend {
        Backend::Sqlite => vec![
            "CREATE TRIGGER refuse BEFORE INSERT ON delivery_attempts \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        ],
        Backend::Postgres => vec![
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; \
             END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse BEFORE INSERT ON delivery_attempts \
             FOR EACH ROW EXECUTE FUNCTION refuse()",
        ],
    };
    for statement in refuse {
        app.db.execute_unprepared(statement).await.unwrap();
    }
    let stop = CancellationToken::new();
    start_worker(&app, &stop);

    let mut stopped = None;
    for _ in 0..300 {
        let delivery = deliveries::Entity::find()
            .filter(deliveries::Column::PartnerId.eq(&partner_id))
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        if delivery.status != "pending" {
            stopped = Some(delivery);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopped = stopped.expect("the delivery is stopped, not sent forever");
    assert_eq!(stopped.status, "failed");
    assert!(
        stopped
            .last_error
            .as_deref()
            .unwrap_or("")
            .starts_with("stopped: the outcome of its last 3 attempts could not be recorded"),
        "{stopped:?}"
    );
    assert_eq!(stopped.locked_until, None);
    // Sent once per claim, and no more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.hits().len(), 3);
    stop.cancel();
}
