//! The mock provider's hosted page, as a browser gets it through the gateway: it cannot be
//! framed, its form is refused from another site, it has a favicon, and amounts are written
//! with thousands separators.

use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use testkit::helpers::{Backend, TestApp, checkout_body};

testkit::db_tests!(
    the_page_cannot_be_framed_and_loads_only_its_own_style,
    a_cross_site_form_cannot_press_pay,
    long_names_and_large_amounts_are_written_for_people,
);

async fn open_checkout(app: &TestApp, body: serde_json::Value) -> String {
    let response = app
        .post("/api/v1/orders", &app.service_token(), &body, None)
        .await;
    assert_eq!(response.status(), 201);
    let order: serde_json::Value = response.json().await.unwrap();
    let response = app
        .post(
            &format!("/api/v1/orders/{}/checkout", order["id"].as_str().unwrap()),
            &app.token("alice", &[]),
            &checkout_body(),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let payment: serde_json::Value = response.json().await.unwrap();
    payment["id"].as_str().unwrap().to_owned()
}

async fn the_page_cannot_be_framed_and_loads_only_its_own_style(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let payment = open_checkout(&app, testkit::helpers::order_body("alice")).await;
    let response = app
        .client
        .get(app.url(&format!("/checkout/{payment}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "img-src 'self'",
        // The form's answer is a redirect to the shop's pages, which form-action must allow.
        "form-action 'self' https://shop.example https://shop.example",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    // The inline style is allowed by its hash, and by nothing else.
    let html = response.text().await.unwrap();
    let style = html
        .split("<style>")
        .nth(1)
        .and_then(|rest| rest.split("</style>").next())
        .unwrap();
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(style));
    assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
    assert!(!html.contains("<script"), "no script on a payment page");

    let icon = app
        .client
        .get(app.url("/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/x-icon");
    let bytes = icon.bytes().await.unwrap();
    assert_eq!(&bytes[..4], &[0, 0, 1, 0], "an ICO file");
}

async fn a_cross_site_form_cannot_press_pay(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let payment = open_checkout(&app, testkit::helpers::order_body("alice")).await;
    let url = app.url(&format!("/checkout/{payment}"));
    let refused = [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example"),
        ("origin", "null"),
    ];
    for (name, value) in refused {
        let response = app
            .client
            .post(&url)
            .header(name, value)
            .form(&[("action", "pay")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{name}: {value}");
        assert_eq!(response.headers()["x-frame-options"], "DENY");
    }
    // Nothing was paid.
    assert_eq!(app.verify("alice", &payment).await["status"], "pending");

    // The page's own form: the browser says same-origin (and its Origin is the page's).
    let response = app
        .client
        .post(&url)
        .header("sec-fetch-site", "same-origin")
        .header("origin", app.payment_ms.as_str())
        .form(&[("action", "pay")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(app.verify("alice", &payment).await["status"], "succeeded");
}

async fn long_names_and_large_amounts_are_written_for_people(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let long_name = format!("Limited edition {} hoodie", "extra-".repeat(30));
    let body = json!({
        "user_id": "alice",
        "currency": "usd",
        "items": [
            {"sku": "hoodie", "name": long_name, "quantity": 1, "unit_price": 123_456_789},
            {"sku": "pin", "name": "Pin", "quantity": 3, "unit_price": 250}
        ]
    });
    let payment = open_checkout(&app, body).await;
    let html = app
        .client
        .get(app.url(&format!("/checkout/{payment}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("1,234,567.89 USD"), "{html}");
    assert!(html.contains("3 × 2.50 USD"), "{html}");
    assert!(html.contains("Pay 1,234,575.39 USD"), "{html}");
    assert!(html.contains(&long_name));
}
