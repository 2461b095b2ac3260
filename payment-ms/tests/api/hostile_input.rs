//! Text a client controls cannot break the database, a log line or a header: control
//! characters are refused with a 422 naming the field, and currencies that are not money too.

use payment_ms::{
    orders::entities::orders, refunds::entities::refunds, webhooks::entities::partners,
};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use testkit::helpers::{Backend, TestApp, order_body, problem};

testkit::db_tests!(
    control_characters_are_refused_in_every_text_of_an_order,
    control_characters_are_refused_in_refunds_partners_and_filters,
    currencies_that_are_not_money_are_refused,
    a_token_whose_sub_has_control_characters_is_a_401,
    a_user_id_in_any_script_works_end_to_end,
);

/// The fields a 422 names.
async fn refused_fields(response: reqwest::Response) -> Vec<String> {
    assert_eq!(response.status(), 422);
    let body = problem(response).await;
    assert_eq!(body["code"], "validation_failed");
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

async fn control_characters_are_refused_in_every_text_of_an_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.service_token();
    type Spoil = fn(&mut Value);
    let cases: [(&str, Spoil); 7] = [
        ("user_id", |b| {
            b["user_id"] = json!("alice\n2026-01-01 INFO forged")
        }),
        ("items[0].name", |b| {
            b["items"][0]["name"] = json!("T-shirt\u{0}")
        }),
        ("items[1].sku", |b| {
            b["items"][1]["sku"] = json!("mug\u{1b}[2J")
        }),
        ("reference", |b| b["reference"] = json!("res\r42")),
        ("metadata.note", |b| {
            b["metadata"] = json!({"note": "nul\u{0}"})
        }),
        ("metadata.cart", |b| b["metadata"] = json!({"ca\nrt": "x"})),
        ("metadata.lines[1]", |b| {
            b["metadata"] = json!({"lines": ["ok", "bell\u{7}"]})
        }),
    ];
    for (field, spoil) in cases {
        let mut body = order_body("alice");
        spoil(&mut body);
        let response = app.post("/api/v1/orders", &token, &body, None).await;
        assert_eq!(refused_fields(response).await, [field], "{body}");
    }
    assert_eq!(orders::Entity::find().count(&app.db).await.unwrap(), 0);

    // What metadata documents: its string values may hold tabs and line breaks.
    let mut body = order_body("alice");
    body["metadata"] = json!({"note": "gift wrap\nplease\tthanks"});
    let response = app.post("/api/v1/orders", &token, &body, None).await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["metadata"]["note"], "gift wrap\nplease\tthanks");
}

async fn control_characters_are_refused_in_refunds_partners_and_filters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token();
    let (_, payment) = app.order_and_payment("alice").await;
    let payment_id = payment["id"].as_str().unwrap();
    assert_eq!(app.press(payment_id, "pay").await.status(), 303);
    app.verify("alice", payment_id).await;

    let response = app
        .post(
            &format!("/api/v1/payments/{payment_id}/refunds"),
            &admin,
            &json!({"amount": 100, "reason": "requested\u{0}"}),
            None,
        )
        .await;
    assert_eq!(refused_fields(response).await, ["reason"]);
    assert_eq!(refunds::Entity::find().count(&app.db).await.unwrap(), 0);

    let response = app
        .post(
            "/api/v1/partners",
            &admin,
            &json!({"name": "Evil\npartner", "url": "http://127.0.0.1:9/hooks"}),
            None,
        )
        .await;
    assert_eq!(refused_fields(response).await, ["name"]);
    let response = app
        .post(
            "/api/v1/partners",
            &admin,
            &json!({"name": "Tabbed url", "url": "http://127.0.0.1:9/ho\toks"}),
            None,
        )
        .await;
    assert_eq!(refused_fields(response).await, ["url"]);
    assert_eq!(partners::Entity::find().count(&app.db).await.unwrap(), 0);

    let response = app.get("/api/v1/orders?user_id=al%00ice", &admin).await;
    assert_eq!(refused_fields(response).await, ["user_id"]);
    let response = app.get("/api/v1/payments?order_id=x%00", &admin).await;
    assert_eq!(refused_fields(response).await, ["order_id"]);
}

async fn currencies_that_are_not_money_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.service_token();
    for code in [
        "xxx", "XTS", "xau", "xag", "xpd", "xpt", "xdr", "xba", "bov", "usn", "hrk",
    ] {
        let mut body = order_body("alice");
        body["currency"] = json!(code);
        let response = app.post("/api/v1/orders", &token, &body, None).await;
        assert_eq!(response.status(), 422, "{code}");
        let problem = problem(response).await;
        assert_eq!(problem["errors"][0]["field"], "currency", "{code}");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(&code.to_lowercase()), "{message}");
    }
    // Real currencies whose code starts with X are money.
    for code in ["xof", "xaf", "xcd", "xpf"] {
        let mut body = order_body("alice");
        body["currency"] = json!(code);
        let response = app.post("/api/v1/orders", &token, &body, None).await;
        assert_eq!(response.status(), 201, "{code}");
    }
    assert_eq!(orders::Entity::find().count(&app.db).await.unwrap(), 4);
}

async fn a_token_whose_sub_has_control_characters_is_a_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for sub in ["alice\nbob", "alice\u{0}", "al\rice", "a\u{7f}"] {
        let token = app.token(sub, &["admin"]);
        let response = app.get("/api/v1/orders", &token).await;
        assert_eq!(response.status(), 401, "{sub:?}");
        assert_eq!(problem(response).await["code"], "unauthorized");
    }
}

async fn a_user_id_in_any_script_works_end_to_end(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A `sub` outside ASCII used to be a 502: it could not be put in a header as it was.
    let user = "José-日本";
    let (order, payment) = app.order_and_payment(user).await;
    assert_eq!(order["user_id"], user);
    assert_eq!(payment["user_id"], user);
    let list: Value = app
        .get("/api/v1/orders", &app.token(user, &[]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], order["id"]);
}
