//! The OpenAPI document: current in docs/, served, and true to the router.

use std::path::Path;

use serde_json::Value;

use testkit::helpers::{Backend, TestApp};

/// `UPDATE_OPENAPI=1 cargo test -p gateway openapi` rewrites the committed copy.
#[test]
fn the_committed_openapi_document_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let generated = gateway::openapi::json();
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(&path, format!("{generated}\n")).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated,
        "docs/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p gateway openapi"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let served: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served["openapi"], "3.1.0");
    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    assert!(docs.text().await.unwrap().contains("/openapi.json"));

    let mut operations = 0;
    for (path, item) in served["paths"].as_object().unwrap() {
        let concrete = path
            .replace(
                "/orders/{id}",
                "/orders/ord_00000000000000000000000000000000",
            )
            .replace(
                "/payments/{id}",
                "/payments/pay_00000000000000000000000000000000",
            )
            .replace(
                "/partners/{id}",
                "/partners/ptn_00000000000000000000000000000001",
            )
            .replace(
                "/events/{id}",
                "/events/evt_00000000000000000000000000000000",
            )
            .replace(
                "/dead-letters/{id}",
                "/dead-letters/dlq_00000000000000000000000000000000",
            )
            .replace(
                "/plans/{id}",
                "/plans/plan_00000000000000000000000000000000",
            )
            .replace(
                "/subscriptions/{id}",
                "/subscriptions/sub_00000000000000000000000000000000",
            )
            .replace(
                "/invoices/{id}",
                "/invoices/inv_00000000000000000000000000000000",
            )
            .replace(
                "/test-clocks/{id}",
                "/test-clocks/clk_00000000000000000000000000000000",
            )
            .replace("{delivery_id}", "dlv_00000000000000000000000000000000")
            .replace("{item_id}", "oli_00000000000000000000000000000000")
            .replace("{provider}", "stripe");
        for method in item.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .client
                .request(method.clone(), app.url(&concrete))
                .bearer_auth(app.admin_token())
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            assert!(
                !(status == 404 && body["detail"] == "No such route"),
                "{method} {path} is documented but not routed"
            );
            operations += 1;
        }
    }
    assert_eq!(operations, 66);
}

/// `/docs` loads nothing from elsewhere: the viewer's every file comes from the gateway.
#[tokio::test]
async fn the_docs_work_offline() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let page = app
        .client
        .get(app.url("/docs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let links: Vec<&str> = page
        .split(['"', '\''])
        .filter(|part| part.ends_with(".js") || part.ends_with(".css") || part.ends_with(".png"))
        .collect();
    assert!(links.len() >= 4, "{page}");
    for link in links {
        assert!(
            link.starts_with("/docs/assets/"),
            "{link} is not served here"
        );
        let response = app.client.get(app.url(link)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{link}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let expected = match link.rsplit('.').next() {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            _ => "image/png",
        };
        assert!(content_type.starts_with(expected), "{link}: {content_type}");
        assert!(!response.bytes().await.unwrap().is_empty());
    }
    assert!(!page.contains("https://"), "{page}");
}
