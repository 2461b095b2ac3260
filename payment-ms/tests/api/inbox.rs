//! Events from other services through the HTTP door (`POST /api/v1/events`), as a service
//! without NATS sends them: each handler's effect, once; bad events refused and not recorded;
//! the inbox an admin reads.

use reqwest::Response;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use testkit::db_tests;
use testkit::helpers::{Backend, TestApp, problem};

use payment_ms::events::entities::events;
use payment_ms::inbox::entities::inbox;

db_tests!(
    user_deleted_cancels_what_is_pending_once,
    order_created_creates_the_order_once,
    bad_events_are_refused_and_not_recorded,
    billing_events_are_recorded_and_unknown_types_ignored,
);

pub fn cloud_event(id: &str, event_type: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": "users-service",
        "type": event_type,
        "time": "2026-11-29T10:00:00Z",
        "datacontenttype": "application/json",
        "data": data,
    })
}

async fn post_event(app: &TestApp, token: &str, event: &Value) -> Response {
    app.client
        .post(app.url("/api/v1/events"))
        .bearer_auth(token)
        .header("content-type", "application/cloudevents+json")
        .body(serde_json::to_vec(event).unwrap())
        .send()
        .await
        .expect("POST /api/v1/events")
}

async fn event_count(app: &TestApp) -> u64 {
    events::Entity::find().count(&app.db).await.unwrap()
}

async fn user_deleted_cancels_what_is_pending_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A pending order being paid, a paid one, a pending one without a checkout; and another
    // user's pending order.
    let (open, open_payment) = app.order_and_payment("u_gone").await;
    let (paid, paid_payment) = app.order_and_payment("u_gone").await;
    let pay_id = paid_payment["id"].as_str().unwrap();
    assert_eq!(app.press(pay_id, "pay").await.status(), 303);
    assert_eq!(app.verify("u_gone", pay_id).await["status"], "succeeded");
    let idle = app.create_order("u_gone").await;
    let other = app.create_order("u_stays").await;

    let mut event = cloud_event("evt-user-1", "user.deleted", json!({"user_id": "u_gone"}));
    event["correlationid"] = json!("flow-7");
    let response = post_event(&app, &app.service_token(), &event).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], "evt-user-1");
    assert_eq!(body["duplicate"], false);
    assert_eq!(body["outcome"], "applied");
    assert_eq!(
        body["detail"],
        "canceled 2 pending orders, 0 other pending payments and 0 subscriptions of user u_gone"
    );

    let admin = app.admin_token();
    let status = |path: String| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let r: Value = app.get(&path, &admin).await.json().await.unwrap();
            r["status"].as_str().unwrap().to_owned()
        }
    };
    let open_id = open["id"].as_str().unwrap();
    let open_pay = open_payment["id"].as_str().unwrap();
    assert_eq!(
        status(format!("/api/v1/orders/{open_id}")).await,
        "canceled"
    );
    assert_eq!(
        status(format!("/api/v1/payments/{open_pay}")).await,
        "canceled"
    );
    assert_eq!(
        status(format!("/api/v1/orders/{}", idle["id"].as_str().unwrap())).await,
        "canceled"
    );
    assert_eq!(
        status(format!("/api/v1/orders/{}", paid["id"].as_str().unwrap())).await,
        "paid"
    );
    assert_eq!(
        status(format!("/api/v1/payments/{pay_id}")).await,
        "succeeded"
    );
    assert_eq!(
        status(format!("/api/v1/orders/{}", other["id"].as_str().unwrap())).await,
        "pending"
    );
    assert_eq!(
        app.events_of(open_id).await,
        [
            "order.created",
            "order.payment_pending",
            "order.updated",
            "order.canceled"
        ]
    );
    assert_eq!(
        app.events_of(open_pay).await,
        ["payment.created", "payment.canceled"]
    );
    // The events it caused say so.
    let caused = events::Entity::find()
        .filter(events::Column::CausationId.eq("evt-user-1"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(
        caused, 4,
        "two order.canceled, one payment.canceled and the order.updated it made"
    );
    let in_flow = events::Entity::find()
        .filter(events::Column::CorrelationId.eq("flow-7"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(in_flow, 4, "the sender's correlation id is carried on");

    // The same event again changes nothing.
    let before = event_count(&app).await;
    let again = post_event(&app, &app.service_token(), &event).await;
    assert_eq!(again.status(), 202);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["outcome"], "applied");
    assert_eq!(event_count(&app).await, before);
    let rows = inbox::Entity::find().count(&app.db).await.unwrap();
    assert_eq!(rows, 1);
}

async fn order_created_creates_the_order_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let event = cloud_event(
        "ord-svc-7",
        "order.created",
        json!({
            "order_id": "ext-order-7",
            "user_id": "u_buyer",
            "currency": "EUR",
            "items": [
                {"sku": "book", "name": "Book", "quantity": 3, "unit_price": 1250},
                {"sku": "pen", "name": "Pen", "quantity": 1, "unit_price": 199}
            ]
        }),
    );
    let response = post_event(&app, &app.service_token(), &event).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["outcome"], "applied");
    let detail = body["detail"].as_str().unwrap();
    let order_id = detail.strip_prefix("created order ").expect(detail);

    let buyer = app.token("u_buyer", &[]);
    let order: Value = app
        .get(&format!("/api/v1/orders/{order_id}"), &buyer)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["reference"], "ext-order-7");
    assert_eq!(order["currency"], "eur");
    assert_eq!(order["amount"], 3 * 1250 + 199);
    assert_eq!(order["status"], "pending");
    // The frontend can start its checkout.
    assert_eq!(app.checkout("u_buyer", order_id, None).await.status(), 201);
    let events_of_order = app.events_of(order_id).await;
    assert_eq!(events_of_order, ["order.created", "order.payment_pending"]);
    let created = events::Entity::find()
        .filter(events::Column::SubjectId.eq(order_id))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(created.causation_id.as_deref(), Some("ord-svc-7"));
    assert_eq!(
        created.correlation_id.as_deref(),
        Some("ord-svc-7"),
        "an event without a correlation id starts its own flow"
    );

    // An API request's events are in the request's flow.
    let response = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(app.service_token())
        .header("x-request-id", "req-flow-42")
        .json(&testkit::helpers::order_body("u_buyer"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let by_api: Value = response.json().await.unwrap();
    let recorded = events::Entity::find()
        .filter(events::Column::SubjectId.eq(by_api["id"].as_str().unwrap()))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorded.correlation_id.as_deref(), Some("req-flow-42"));
    assert_eq!(recorded.causation_id, None);

    // Redelivered: still one order.
    let again: Value = post_event(&app, &app.service_token(), &event)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["detail"], body["detail"]);
    let list: Value = app
        .get("/api/v1/orders?user_id=u_buyer", &app.service_token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        2,
        "the event's order and the API's"
    );
}

async fn bad_events_are_refused_and_not_recorded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let service = app.service_token();
    let before = event_count(&app).await;

    // Not a CloudEvent: every bad field named.
    let response = post_event(
        &app,
        &service,
        &json!({"specversion": "0.3", "type": "User", "data": 1}),
    )
    .await;
    assert_eq!(response.status(), 422);
    let body = problem(response).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["specversion", "id", "source", "type", "data"]);

    // A known type whose data does not fit.
    let response = post_event(
        &app,
        &service,
        &cloud_event("e-1", "order.created", json!({"order_id": "x", "user_id": "u", "currency": "usd", "items": [{"sku": "a", "name": "A", "quantity": 0, "unit_price": 100}]})),
    )
    .await;
    assert_eq!(response.status(), 422);
    let body = problem(response).await;
    assert!(
        body["errors"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("data.items"),
        "{body}"
    );
    let response = post_event(
        &app,
        &service,
        &cloud_event("e-2", "user.deleted", json!({"id": "u"})),
    )
    .await;
    assert_eq!(response.status(), 422);

    // Not JSON at all, or not said to be.
    let response = app
        .client
        .post(app.url("/api/v1/events"))
        .bearer_auth(&service)
        .header("content-type", "application/cloudevents+json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let response = app
        .client
        .post(app.url("/api/v1/events"))
        .bearer_auth(&service)
        .header("content-type", "text/plain")
        .body(
            serde_json::to_vec(&cloud_event("e-3", "user.deleted", json!({"user_id": "u"})))
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    // A browser's user may not post events.
    let user = app.token("u_1", &[]);
    let response = post_event(
        &app,
        &user,
        &cloud_event("e-4", "user.deleted", json!({"user_id": "u_1"})),
    )
    .await;
    assert_eq!(response.status(), 403);

    assert_eq!(inbox::Entity::find().count(&app.db).await.unwrap(), 0);
    assert_eq!(event_count(&app).await, before);
    // Since nothing was recorded, the same id with good data is handled.
    let response = post_event(
        &app,
        &service,
        &cloud_event("e-2", "user.deleted", json!({"user_id": "u"})),
    )
    .await;
    assert_eq!(response.status(), 202);
}

async fn billing_events_are_recorded_and_unknown_types_ignored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let service = app.service_token();
    for (id, event_type, data, outcome) in [
        (
            "w-1",
            "wallet.insufficient_funds",
            json!({"user_id": "u_1"}),
            "applied",
        ),
        (
            "w-2",
            "wallet.balance_changed",
            json!({"user_id": "u_1", "currency": "usd", "balance": 1200}),
            "applied",
        ),
        (
            "w-3",
            "user.upgraded",
            json!({"user_id": "u_1", "plan_code": "pro"}),
            "applied",
        ),
        (
            "w-4",
            "subscription.usage_exceeded",
            json!({"subscription_id": "sub_1"}),
            "recorded",
        ),
        (
            "w-5",
            "user.logged_in",
            json!({"user_id": "u_1"}),
            "ignored",
        ),
    ] {
        let response = post_event(&app, &service, &cloud_event(id, event_type, data)).await;
        assert_eq!(response.status(), 202, "{event_type}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["outcome"], outcome, "{event_type}");
    }
    let response = post_event(
        &app,
        &service,
        &cloud_event(
            "w-6",
            "wallet.balance_changed",
            json!({"user_id": "u_1", "currency": "usd", "balance": 12.5}),
        ),
    )
    .await;
    assert_eq!(
        response.status(),
        422,
        "a balance in minor units is an integer"
    );

    // The inbox, for admins.
    let admin = app.admin_token();
    let page: Value = app
        .get("/api/v1/inbox?limit=2", &admin)
        .await
        .json()
        .await
        .unwrap();
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["message_id"], "w-5", "newest first");
    assert_eq!(data[0]["type"], "user.logged_in");
    assert_eq!(data[0]["door"], "http");
    assert_eq!(data[0]["envelope"]["data"]["user_id"], "u_1");
    let cursor = page["next_cursor"].as_str().unwrap();
    let next: Value = app
        .get(&format!("/api/v1/inbox?limit=10&cursor={cursor}"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["data"].as_array().unwrap().len(), 3);
    let recorded: Value = app
        .get(
            "/api/v1/inbox?outcome=recorded&type=subscription.usage_exceeded",
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(recorded["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get("/api/v1/inbox?outcome=done", &admin).await.status(),
        422
    );
    assert_eq!(app.get("/api/v1/inbox", &service).await.status(), 403);
    assert_eq!(app.get("/api/v1/dead-letters", &admin).await.status(), 200);
    assert_eq!(
        app.get("/api/v1/dead-letters/dlq_x", &admin).await.status(),
        404
    );
}
