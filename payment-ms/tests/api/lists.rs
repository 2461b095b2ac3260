//! Lists: newest first, cursor pages, each user seeing their own.

use serde_json::Value;

use testkit::helpers::{Backend, TestApp, problem};

testkit::db_tests!(orders_page_with_cursors, payments_are_listed_per_user);

async fn ids(response: reqwest::Response) -> (Vec<String>, Option<String>) {
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    let ids = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, page["next_cursor"].as_str().map(str::to_owned))
}

async fn orders_page_with_cursors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(
            app.create_order("alice").await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let bobs = app.create_order("bob").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    created.reverse(); // newest first

    let alice = app.token("alice", &[]);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/orders?limit=2&cursor={c}"),
            None => "/api/v1/orders?limit=2".to_owned(),
        };
        let (page, next) = ids(app.get(&path, &alice).await).await;
        assert!(page.len() <= 2);
        seen.extend(page);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, created);

    // A user asking for someone else's orders still sees only their own.
    let (page, _) = ids(app.get("/api/v1/orders?user_id=bob", &alice).await).await;
    assert_eq!(page, created);
    // A service can look at one user's orders.
    let (page, _) = ids(app
        .get("/api/v1/orders?user_id=bob", &app.service_token())
        .await)
    .await;
    assert_eq!(page, [bobs]);
    let (page, _) = ids(app.get("/api/v1/orders?status=paid", &alice).await).await;
    assert!(page.is_empty());

    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "cursor=garbage",
        "status=lost",
    ] {
        let response = app.get(&format!("/api/v1/orders?{bad}"), &alice).await;
        assert_eq!(response.status(), 422, "{bad}");
        problem(response).await;
    }
}

async fn payments_are_listed_per_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, alices) = app.order_and_payment("alice").await;
    let (_, bobs) = app.order_and_payment("bob").await;
    let (page, _) = ids(app.get("/api/v1/payments", &app.token("alice", &[])).await).await;
    assert_eq!(page, [alices["id"].as_str().unwrap()]);
    let (page, _) = ids(app
        .get("/api/v1/payments?user_id=alice", &app.token("bob", &[]))
        .await)
    .await;
    assert_eq!(page, [bobs["id"].as_str().unwrap()]);
    let (page, _) = ids(app
        .get("/api/v1/payments", &app.token("root", &["admin"]))
        .await)
    .await;
    assert_eq!(page.len(), 2);
    let path = format!(
        "/api/v1/payments?order_id={}&status=pending",
        alices["order_id"].as_str().unwrap()
    );
    let (page, _) = ids(app.get(&path, &app.token("root", &["admin"])).await).await;
    assert_eq!(page, [alices["id"].as_str().unwrap()]);
}
