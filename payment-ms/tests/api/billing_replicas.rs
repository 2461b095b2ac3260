//! Two payment-ms replicas on one PostgreSQL database run the billing jobs of 1,000
//! subscriptions due at the same moment: each period is billed exactly once, and the invoice
//! numbers are 1 to 1,000 without a gap or a repeat.

use std::collections::HashSet;
use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use payment_ms::billing::entities::{billed_periods, invoices};
use testkit::helpers::{Backend, TestApp, TestDb};

const SUBSCRIPTIONS: usize = 1_000;

fn quick_billing(config: &mut payment_ms::Config) {
    config.billing.poll_interval = Duration::from_millis(50);
    config.billing.finalize_grace = Duration::ZERO;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs PostgreSQL: build and run the tests with TEST_DATABASE_URL set (scripts/test does)"
)]
async fn two_replicas_bill_each_period_once_with_gapless_numbers() {
    let db = TestDb::create(Backend::Postgres).await;
    let url = db.url.clone();
    let app = TestApp::spawn_on(db, quick_billing, |_| {}).await;
    let env = testkit::helpers::test_env(&url);
    let mut config = payment_ms::Config::from_source(&env).expect("config");
    config.addr = "127.0.0.1:0".parse().expect("addr");
    quick_billing(&mut config);
    let second = payment_ms::Application::build(config)
        .await
        .expect("second replica");
    let stop = CancellationToken::new();
    tokio::spawn(second.run_until(stop.clone()));

    let response = app
        .post(
            "/api/v1/plans",
            &app.admin_token(),
            &json!({"code": "daily", "name": "Daily", "currency": "usd", "interval": "day",
                    "amount": 199}),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let plan: Value = response.json().await.expect("plan");
    let plan_id = plan["id"].as_str().expect("id").to_owned();

    // 1,000 subscriptions whose period ends now, and their renewals, all due at this moment.
    let due = testkit::billing::due_now(&app.db, &plan_id, SUBSCRIPTIONS, None)
        .await
        .expect("subscriptions");

    // Both replicas work until nothing due is left (renewals, then finalizations).
    testkit::billing::run_until_settled(&app.db, || async {
        let finalized = invoices::Entity::find()
            .filter(invoices::Column::Number.is_not_null())
            .count(&app.db)
            .await
            .expect("count");
        (
            finalized as usize >= SUBSCRIPTIONS,
            format!("{finalized} finalized"),
        )
    })
    .await;
    // The figures' running totals hold what their rows add up to.
    testkit::billing::assert_totals_match(&app.db).await;

    let all = invoices::Entity::find()
        .all(&app.db)
        .await
        .expect("invoices");
    assert_eq!(all.len(), SUBSCRIPTIONS, "one invoice per subscription");
    let subscribed: HashSet<&str> = all
        .iter()
        .filter_map(|i| i.subscription_id.as_deref())
        .collect();
    assert_eq!(
        subscribed.len(),
        SUBSCRIPTIONS,
        "no subscription billed twice"
    );
    assert!(all.iter().all(|i| i.total == 199 && i.period_start == due));
    let mut numbers: Vec<String> = all.iter().filter_map(|i| i.number.clone()).collect();
    numbers.sort();
    let year = chrono::Datelike::year(&all[0].finalized_at.expect("finalized"));
    let expected: Vec<String> = (1..=SUBSCRIPTIONS)
        .map(|n| format!("INV-{year}-{n:06}"))
        .collect();
    assert_eq!(numbers, expected, "gapless, unique");
    let billed = billed_periods::Entity::find()
        .count(&app.db)
        .await
        .expect("count");
    assert_eq!(billed as usize, SUBSCRIPTIONS);
    stop.cancel();
}
