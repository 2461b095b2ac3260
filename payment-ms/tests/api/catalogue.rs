//! The catalogue through the gateway: trusted callers price products; a buyer orders from SKUs
//! and quantities, and the order's prices are the catalogue's, never the browser's.

use serde_json::{Value, json};

use testkit::db_tests;
use testkit::helpers::{Backend, TestApp, error_fields, problem};

db_tests!(a_buyer_orders_from_the_catalogue_at_its_prices);

async fn put_product(app: &TestApp, token: &str, sku: &str, body: Value) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/api/v1/products/{sku}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("PUT")
}

async fn a_buyer_orders_from_the_catalogue_at_its_prices(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let service = app.service_token();
    let buyer = app.token("dana", &[]);

    // The catalogue: created (201), replaced (200); buyers cannot write it.
    let response = put_product(
        &app,
        &service,
        "tee-black-m",
        json!({"name": "T-shirt, black, M", "prices": {"usd": 2500, "EUR": 2300}}),
    )
    .await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let product: Value = response.json().await.expect("product");
    assert_eq!(product["prices"], json!({"eur": 2300, "usd": 2500}));
    assert_eq!(product["active"], true);
    let response = put_product(
        &app,
        &service,
        "tee-black-m",
        json!({"name": "T-shirt, black, M", "prices": {"usd": 2600, "eur": 2300}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        put_product(
            &app,
            &service,
            "mug",
            json!({"name": "Mug", "prices": {"usd": 900.0}})
        )
        .await
        .status(),
        201
    );
    assert_eq!(
        put_product(
            &app,
            &service,
            "old-cap",
            json!({"name": "Cap", "prices": {"usd": 1500}, "active": false})
        )
        .await
        .status(),
        201
    );
    let response = put_product(
        &app,
        &buyer,
        "tee-black-m",
        json!({"name": "Free tee", "prices": {"usd": 1}}),
    )
    .await;
    assert_eq!(response.status(), 403);
    let response = put_product(
        &app,
        &service,
        "bad",
        json!({"name": "Bad", "prices": {"xxx": 1, "usd": -5, "eur": 9.5}}),
    )
    .await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        error_fields(response).await,
        ["prices.eur", "prices.usd", "prices.xxx"]
    );

    // Buyers see what is for sale, a page at a time.
    let page = app.get_json("/api/v1/products?limit=1", &buyer).await;
    assert_eq!(page["data"][0]["sku"], "mug");
    let next = page["next_cursor"].as_str().expect("cursor").to_owned();
    let page = app
        .get_json(&format!("/api/v1/products?limit=5&cursor={next}"), &buyer)
        .await;
    let skus: Vec<&str> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["sku"].as_str().expect("sku"))
        .collect();
    assert_eq!(skus, ["tee-black-m"]);
    assert_eq!(
        app.get("/api/v1/products/old-cap", &buyer).await.status(),
        404
    );
    assert_eq!(
        app.get("/api/v1/products/old-cap", &service).await.status(),
        200
    );

    // A buyer's order: SKUs and quantities, priced by the catalogue.
    let response = app
        .post(
            "/api/v1/orders",
            &buyer,
            &json!({"currency": "usd", "items": [
            {"sku": "tee-black-m", "quantity": 2}, {"sku": "mug", "quantity": 1}]}),
            None,
        )
        .await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let order: Value = response.json().await.expect("order");
    assert_eq!(order["user_id"], "dana");
    assert_eq!(order["amount"], 2 * 2600 + 900);
    assert_eq!(order["items"][0]["name"], "T-shirt, black, M");
    assert_eq!(order["items"][0]["unit_price"], 2600);
    assert_eq!(order["items"][1]["line_total"], 900);
    // In euros, the euro prices; the mug has none.
    let response = app
        .post(
            "/api/v1/orders",
            &buyer,
            &json!({"currency": "eur", "items": [
            {"sku": "tee-black-m", "quantity": 1}, {"sku": "mug", "quantity": 1},
            {"sku": "old-cap", "quantity": 1}, {"sku": "nothing", "quantity": 1}]}),
            None,
        )
        .await;
    assert_eq!(response.status(), 422);
    let body = problem(response).await;
    let errors: Vec<(String, String)> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap_or("").to_owned(),
                e["message"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            ("items[1].sku".to_owned(), "has no price in eur".to_owned()),
            ("items[2].sku".to_owned(), "is not for sale".to_owned()),
            (
                "items[3].sku".to_owned(),
                "no such product in the catalogue".to_owned()
            ),
        ]
    );

    // The browser never sets a price, nor orders for someone else.
    let response = app
        .post(
            "/api/v1/orders",
            &buyer,
            &json!({"currency": "usd", "items": [
            {"sku": "tee-black-m", "quantity": 1, "name": "Tee", "unit_price": 1}]}),
            None,
        )
        .await;
    assert_eq!(response.status(), 403);
    let response = app
        .post(
            "/api/v1/orders",
            &buyer,
            &json!({"user_id": "erin", "currency": "usd", "items": [
            {"sku": "mug", "quantity": 1}]}),
            None,
        )
        .await;
    assert_eq!(response.status(), 403);
    // A service may mix catalogue lines and explicit ones, for any user.
    let response = app
        .post("/api/v1/orders", &service, &json!({"user_id": "erin", "currency": "usd", "items": [
            {"sku": "mug", "quantity": 2}, {"sku": "gift-wrap", "name": "Gift wrap", "quantity": 1, "unit_price": 300}]}), None)
        .await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.expect("order");
    assert_eq!(order["amount"], 2 * 900 + 300);
    // ...but must say whose it is, and give a line's name and price together.
    let response = app
        .post(
            "/api/v1/orders",
            &service,
            &json!({"currency": "usd", "items": [
            {"sku": "gift-wrap", "quantity": 1, "unit_price": 300}]}),
            None,
        )
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(error_fields(response).await, ["user_id", "items[0]"]);
    // Dana sees her order only.
    let mine = app.get_json("/api/v1/orders", &buyer).await;
    assert_eq!(mine["data"].as_array().map(Vec::len), Some(1));
}
