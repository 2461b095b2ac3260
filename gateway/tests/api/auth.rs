//! Who may do what: tokens that must be refused, roles, and owners.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use testkit::helpers::{Backend, INTERNAL_TOKEN, TestApp, order_body, problem};

testkit::db_tests!(
    requests_without_a_valid_token_are_401,
    a_user_without_a_role_cannot_create_orders,
    other_users_resources_do_not_exist_for_them,
    payment_ms_refuses_calls_without_the_internal_token,
);

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

async fn status_with(app: &TestApp, token: Option<&str>) -> (u16, Value) {
    let mut request = app.client.get(app.url("/api/v1/orders"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status == 401 {
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    (status, problem(response).await)
}

async fn requests_without_a_valid_token_are_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({"sub": "alice", "exp": now + 600, "roles": ["admin"]});

    let (status, body) = status_with(&app, None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));

    // Signed with another key.
    let mut other = app.jwt.clone();
    other.key =
        gateway::config::JwtKey::Hs256("someone-elses-secret-0123456789abcdef".to_owned().into());
    let forged = gateway::auth::mint_token(
        &other,
        "alice",
        &["admin"],
        std::time::Duration::from_secs(600),
    )
    .unwrap();
    assert_eq!(status_with(&app, Some(&forged)).await.0, 401);

    // Expired (the tests run with no leeway).
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 5);
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &expired,
        &jsonwebtoken::EncodingKey::from_secret(testkit::helpers::JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let (status, body) = status_with(&app, Some(&token)).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (401, Some("The token has expired"))
    );

    // `alg: none`, unsigned.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    assert_eq!(status_with(&app, Some(&none)).await.0, 401);

    // A valid token whose payload was changed after signing (a role added).
    let valid = app.token("alice", &[]);
    let parts: Vec<&str> = valid.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    assert_eq!(status_with(&app, Some(&tampered)).await.0, 401);

    // No `sub`.
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"exp": now + 600}),
        &jsonwebtoken::EncodingKey::from_secret(testkit::helpers::JWT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(status_with(&app, Some(&token)).await.0, 401);

    // Garbage and the wrong scheme.
    assert_eq!(status_with(&app, Some("not.a.jwt")).await.0, 401);
    let response = app
        .client
        .get(app.url("/api/v1/orders"))
        .header("authorization", format!("Basic {valid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // And the valid one works.
    assert_eq!(status_with_ok(&app, &valid).await, 200);
}

async fn status_with_ok(app: &TestApp, token: &str) -> u16 {
    app.get("/api/v1/orders", token).await.status().as_u16()
}

async fn a_user_without_a_role_cannot_create_orders(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for roles in [&[][..], &["customer"][..]] {
        let response = app
            .post(
                "/api/v1/orders",
                &app.token("alice", roles),
                &order_body("alice"),
                None,
            )
            .await;
        assert_eq!(response.status(), 403);
        assert_eq!(problem(response).await["code"], "forbidden");
    }
    // Nothing was created.
    let list: Value = app
        .get("/api/v1/orders", &app.service_token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    // An admin may.
    let response = app
        .post(
            "/api/v1/orders",
            &app.token("root", &["admin"]),
            &order_body("alice"),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
}

async fn other_users_resources_do_not_exist_for_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (order, payment) = app.order_and_payment("alice").await;
    let (order_id, payment_id) = (
        order["id"].as_str().unwrap(),
        payment["id"].as_str().unwrap(),
    );
    let bob = app.token("bob", &[]);

    for path in [
        format!("/api/v1/orders/{order_id}"),
        format!("/api/v1/payments/{payment_id}"),
    ] {
        let response = app.get(&path, &bob).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(problem(response).await["code"], "not_found");
    }
    for path in [
        format!("/api/v1/orders/{order_id}/checkout"),
        format!("/api/v1/orders/{order_id}/cancel"),
        format!("/api/v1/payments/{payment_id}/verify"),
        format!("/api/v1/payments/{payment_id}/cancel"),
    ] {
        // A body the owner could send.
        let body = if path.starts_with("/api/v1/orders/") && path.ends_with("/cancel") {
            serde_json::json!({"reason": "not mine"})
        } else {
            testkit::helpers::checkout_body()
        };
        let response = app.post(&path, &bob, &body, None).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    // Bob changed nothing.
    assert_eq!(app.events_of(payment_id).await, ["payment.created"]);
    assert_eq!(
        app.events_of(order_id).await,
        ["order.created", "order.payment_pending"]
    );

    // The owner and an admin see them; a service sees the order but only admins see payments.
    assert_eq!(
        app.get(
            &format!("/api/v1/payments/{payment_id}"),
            &app.token("alice", &[])
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        app.get(
            &format!("/api/v1/payments/{payment_id}"),
            &app.token("root", &["admin"])
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        app.get(&format!("/api/v1/orders/{order_id}"), &app.service_token())
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get(
            &format!("/api/v1/payments/{payment_id}"),
            &app.service_token()
        )
        .await
        .status(),
        404
    );
    // Only the owner checks out: an admin gets 403, not a payment in someone's name.
    let response = app
        .post(
            &format!("/api/v1/orders/{order_id}/checkout"),
            &app.token("root", &["admin"]),
            &testkit::helpers::checkout_body(),
            None,
        )
        .await;
    assert_eq!(response.status(), 403);
}

async fn payment_ms_refuses_calls_without_the_internal_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let url = format!("{}/internal/v1/orders", app.payment_ms);
    let body = order_body("alice");
    let cases: [Option<&str>; 3] = [None, Some("wrong-token"), Some("")];
    for token in cases {
        let mut request = app
            .client
            .post(&url)
            .header("x-user-id", "mallory")
            .header("x-user-roles", "admin")
            .json(&body);
        if let Some(token) = token {
            request = request.header("x-internal-token", token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{token:?}");
        assert_eq!(problem(response).await["code"], "unauthorized");
    }
    // With it, the same call goes through.
    let response = app
        .client
        .post(&url)
        .header("x-internal-token", INTERNAL_TOKEN)
        .header("x-user-id", "shop")
        .header("x-user-roles", "service")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}
