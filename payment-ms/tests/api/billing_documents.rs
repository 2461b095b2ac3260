//! An invoice as people read it: a printable page and a PDF, through the gateway, for its
//! owner and the trusted roles only.

use serde_json::{Value, json};

use crate::billing::{create_plan, pay_by_checkout};
use testkit::db_tests;
use testkit::helpers::{Backend, TestApp, problem};

db_tests!(an_invoice_reads_as_a_page_and_as_a_pdf);

/// Whether `haystack` holds `needle`.
fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn an_invoice_reads_as_a_page_and_as_a_pdf(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        |c| c.billing.issuer = vec!["Acme Ltd".into(), "1 Main Street".into()],
        |_| {},
    )
    .await;
    create_plan(&app, "solo", 1500, 0).await;
    let carol = app.token("carol", &[]);
    let response = app
        .post(
            "/api/v1/subscriptions",
            &carol,
            &json!({"plan": "solo", "time_zone": "America/New_York"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let sub: Value = response.json().await.expect("subscription");
    let invoice_id = sub["latest_invoice_id"]
        .as_str()
        .expect("invoice")
        .to_owned();
    let invoice = app
        .get_json(&format!("/api/v1/invoices/{invoice_id}"), &carol)
        .await;
    let number = invoice["number"].as_str().expect("number").to_owned();

    // The page: locked down, and saying what the invoice says.
    let page = app
        .get(&format!("/api/v1/invoices/{invoice_id}/html"), &carol)
        .await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.expect("html");
    assert!(html.contains(&format!("<title>Invoice {number}</title>")));
    assert!(html.contains("Acme Ltd<br>1 Main Street"));
    assert!(html.contains("SOLO (solo)"));
    assert!(html.contains("<th>Amount due</th><th class=\"n\">15.00 USD</th>"));
    assert!(html.contains("Dates in the America/New_York time zone."));

    // The PDF, named after its number.
    let pdf = app
        .get(&format!("/api/v1/invoices/{invoice_id}/pdf"), &carol)
        .await;
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert_eq!(
        pdf.headers()["content-disposition"],
        format!("inline; filename=\"{number}.pdf\"").as_str()
    );
    let bytes = pdf.bytes().await.expect("pdf");
    assert!(bytes.starts_with(b"%PDF-"));
    assert!(holds(&bytes, format!("(Invoice {number}) Tj").as_bytes()));
    assert!(holds(&bytes, b"(15.00 USD) Tj"));
    assert!(!holds(&bytes, b"(PAID) Tj"));

    // Nobody else reads it; the trusted roles do.
    for format in ["html", "pdf"] {
        let path = format!("/api/v1/invoices/{invoice_id}/{format}");
        let other = app.get(&path, &app.token("dave", &[])).await;
        assert_eq!(other.status(), 404);
        assert_eq!(problem(other).await["status"], 404);
        assert_eq!(app.get(&path, &app.admin_token()).await.status(), 200);
    }
    let unknown = app
        .get(
            "/api/v1/invoices/inv_00000000000000000000000000000000/pdf",
            &carol,
        )
        .await;
    assert_eq!(unknown.status(), 404);

    // Once paid, the document says so.
    let payment = pay_by_checkout(&app, &carol, &invoice_id).await;
    let payment_id = payment["id"].as_str().expect("id");
    app.verify("carol", payment_id).await;
    let bytes = app
        .get(&format!("/api/v1/invoices/{invoice_id}/pdf"), &carol)
        .await
        .bytes()
        .await
        .expect("pdf");
    assert!(holds(&bytes, b"(PAID) Tj"));
    assert!(holds(&bytes, b"(0.00 USD) Tj"));
}
