//! Revenue figures from the daily totals the payments keep: payments by the day they
//! succeeded, refunds by the day they settled, whole UTC days, per day and per month.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde_json::{Value, json};

use testkit::helpers::{Backend, TestApp, problem};

testkit::db_tests!(revenue_counts_whole_days_net_of_refunds);

/// Pays a new order of 48.48 USD for `user` through the hosted page; answers the payment.
async fn paid_order(app: &TestApp, user: &str) -> Value {
    let (_, payment) = app.order_and_payment(user).await;
    let id = payment["id"].as_str().expect("id");
    assert_eq!(app.press(id, "pay").await.status(), 303);
    let paid = app.verify(user, id).await;
    assert_eq!(paid["status"], "succeeded");
    paid
}

async fn revenue(app: &TestApp, query: &str) -> Value {
    app.get_json(&format!("/api/v1/stats/revenue{query}"), &app.admin_token())
        .await
}

fn rows(figures: &Value) -> Vec<(String, String, i64, i64, i64, i64)> {
    figures["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {figures}"))
        .iter()
        .map(|r| {
            (
                r["period"].as_str().unwrap_or("").to_owned(),
                r["currency"].as_str().unwrap_or("").to_owned(),
                r["gross"].as_i64().unwrap_or(-1),
                r["refunded"].as_i64().unwrap_or(-1),
                r["net"].as_i64().unwrap_or(-1),
                r["payments"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

fn row(
    period: &str,
    gross: i64,
    refunded: i64,
    payments: i64,
) -> (String, String, i64, i64, i64, i64) {
    (
        period.to_owned(),
        "usd".to_owned(),
        gross,
        refunded,
        gross - refunded,
        payments,
    )
}

async fn revenue_counts_whole_days_net_of_refunds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // payment-ms's clock at noon (UTC) tomorrow, so no day ends during the test.
    let noon = (Utc::now().date_naive() + Duration::days(1))
        .and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("noon"))
        .and_utc();
    app.clock.advance(noon - Utc::now());
    let day = |at: DateTime<Utc>| at.format("%Y-%m-%d").to_string();
    let (first, second) = (day(noon), day(noon + Duration::days(1)));

    let a = paid_order(&app, "ann").await;
    let b = paid_order(&app, "bob").await;
    app.clock.advance(Duration::days(1));
    let c = paid_order(&app, "cid").await;
    // A partial refund of yesterday's payment counts on the day it settles.
    let response = app
        .post(
            &format!("/api/v1/payments/{}/refunds", a["id"].as_str().expect("id")),
            &app.admin_token(),
            &json!({"amount": 1000, "reason": "requested_by_customer"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    assert_eq!(
        app.get_json(
            &format!("/api/v1/payments/{}", a["id"].as_str().expect("id")),
            &app.admin_token()
        )
        .await["status"],
        "partially_refunded"
    );
    let amount = |p: &Value| p["amount"].as_i64().expect("amount");
    assert_eq!((amount(&a), amount(&b), amount(&c)), (4848, 4848, 4848));

    // The last 30 days by default: both days.
    let figures = revenue(&app, "").await;
    assert_eq!(
        rows(&figures),
        [row(&first, 9696, 0, 2), row(&second, 4848, 1000, 1)]
    );
    assert_eq!(figures["interval"], "day");
    // Windows are widened to whole UTC days, and say so.
    let at = |d: &str, t: &str| format!("{d}T{t}Z");
    let figures = revenue(
        &app,
        &format!(
            "?from={}&to={}",
            at(&first, "18:00:00"),
            at(&second, "00:00:00")
        ),
    )
    .await;
    assert_eq!(rows(&figures), [row(&first, 9696, 0, 2)]);
    assert_eq!(figures["from"], at(&first, "00:00:00"));
    assert_eq!(figures["to"], at(&second, "00:00:00"));
    let figures = revenue(&app, &format!("?from={}", at(&second, "00:00:01"))).await;
    assert_eq!(rows(&figures), [row(&second, 4848, 1000, 1)]);
    // By month: one row per month the two days fall in.
    let figures = revenue(&app, "?interval=month").await;
    let months: Vec<_> = rows(&figures);
    if first[..7] == second[..7] {
        assert_eq!(months, [row(&first[..7], 14544, 1000, 3)]);
    } else {
        assert_eq!(
            months,
            [
                row(&first[..7], 9696, 0, 2),
                row(&second[..7], 4848, 1000, 1)
            ]
        );
    }
    // A payment that did not succeed counts nowhere.
    let (_, declined) = app.order_and_payment("dan").await;
    let declined = declined["id"].as_str().expect("id");
    assert_eq!(app.press(declined, "decline").await.status(), 303);
    assert_eq!(app.verify("dan", declined).await["status"], "failed");
    assert_eq!(
        rows(&revenue(&app, "").await),
        [row(&first, 9696, 0, 2), row(&second, 4848, 1000, 1)]
    );

    // The migration that made the daily totals starts them from the payments and refunds
    // already there: rolled back and applied again, it gives the same figures.
    let before = revenue(&app, "?interval=month").await;
    testkit::billing::rebuild_totals(&app.db)
        .await
        .expect("the totals rebuilt");
    assert_eq!(revenue(&app, "?interval=month").await, before);

    let bad = app
        .get("/api/v1/stats/revenue?interval=week", &app.admin_token())
        .await;
    assert_eq!(bad.status(), 422);
    assert_eq!(problem(bad).await["errors"][0]["field"], "interval");
}
