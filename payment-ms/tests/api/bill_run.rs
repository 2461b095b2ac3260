//! The set-based bill run makes, in batches, what each job would make alone: 600 subscriptions
//! due at once (more than two batches), two of them not plain (one canceling at the period's
//! end, one paused), renewed, finalized, charged and paid through the real clock's runner.
//! Checked: the invoices and their numbers, the orders and theirs, the new periods and their
//! renewals, every subject's events numbered 1, 2, 3… without a gap, and a partner's deliveries.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use payment_ms::billing::entities::{billing_jobs, invoices, subscriptions};
use payment_ms::billing::model::{InvoiceStatus, SubscriptionStatus};
use payment_ms::events::entities::events;
use payment_ms::orders::entities::orders;
use payment_ms::webhooks::entities::deliveries;
use testkit::db_tests;
use testkit::helpers::{Backend, TestApp};
use testkit::receiver::Receiver;

db_tests!(a_bill_run_makes_in_batches_what_each_job_would);

const SUBSCRIPTIONS: usize = 600;

async fn a_bill_run_makes_in_batches_what_each_job_would(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        |config| {
            config.billing.poll_interval = Duration::from_millis(50);
            config.billing.finalize_grace = Duration::ZERO;
        },
        |_| {},
    )
    .await;
    let receiver = Receiver::start().await;
    let response = app
        .post(
            "/api/v1/partners",
            &app.admin_token(),
            &json!({"name": "Books", "url": receiver.url, "event_types": ["invoice.finalized"]}),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let partner: Value = response.json().await.expect("partner");
    let partner_id = partner["id"].as_str().expect("id").to_owned();
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
    let plan_id = plan["id"].as_str().expect("id");

    // user0 cancels at the period's end, user1 is paused: their renewals run alone.
    let due = testkit::billing::due_now_with(
        &app.db,
        plan_id,
        SUBSCRIPTIONS,
        Some("pm_mock_ok"),
        |i, sub| match i {
            0 => sub.cancel_at_period_end = true,
            1 => sub.status = SubscriptionStatus::Paused,
            _ => {}
        },
    )
    .await
    .expect("subscriptions");

    let billed = SUBSCRIPTIONS - 2;
    let paid = || {
        invoices::Entity::find()
            .filter(invoices::Column::Status.eq(InvoiceStatus::Paid))
            .count(&app.db)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let pending = billing_jobs::Entity::find()
            .filter(billing_jobs::Column::Status.eq("pending"))
            .filter(billing_jobs::Column::DueAt.lte(Utc::now()))
            .count(&app.db)
            .await
            .expect("count");
        let paid = paid().await.expect("count") as usize;
        if pending == 0 && paid >= billed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{pending} jobs still due, {paid} invoices paid"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // One paid invoice per billed subscription, numbered 1…598 without a gap.
    let all = invoices::Entity::find()
        .all(&app.db)
        .await
        .expect("invoices");
    assert_eq!(all.len(), billed);
    let next = due + chrono::Duration::days(1);
    assert!(all.iter().all(|i| i.status == InvoiceStatus::Paid
        && i.total == 199
        && i.amount_paid == 199
        && (i.period_start, i.period_end) == (due, next)));
    let year = chrono::Datelike::year(&all[0].finalized_at.expect("finalized"));
    let mut numbers: Vec<String> = all.iter().filter_map(|i| i.number.clone()).collect();
    numbers.sort();
    let expected: Vec<String> = (1..=billed).map(|n| format!("INV-{year}-{n:06}")).collect();
    assert_eq!(numbers, expected);

    // Each invoice's order: paid, numbered 1…598 without a gap, its amount the invoice's.
    let orders = orders::Entity::find().all(&app.db).await.expect("orders");
    assert_eq!(orders.len(), billed);
    let by_id: HashMap<&str, &orders::Model> = orders.iter().map(|o| (o.id.as_str(), o)).collect();
    for invoice in &all {
        let order = by_id[invoice.order_id.as_deref().expect("an order")];
        assert_eq!(order.status.as_str(), "paid");
        assert_eq!(order.total_amount, invoice.total);
        assert_eq!(order.reference.as_deref(), Some(invoice.id.as_str()));
    }
    let mut numbers: Vec<String> = orders.iter().filter_map(|o| o.number.clone()).collect();
    numbers.sort();
    let expected: Vec<String> = (1..=billed).map(|n| format!("ORD-{year}-{n:06}")).collect();
    assert_eq!(numbers, expected);

    // The new periods, and the next renewals; the one canceling ended, the paused one renewed
    // without an invoice.
    let subs = subscriptions::Entity::find()
        .all(&app.db)
        .await
        .expect("subscriptions");
    for sub in &subs {
        if sub.user_id == "user0" {
            assert_eq!(sub.status, SubscriptionStatus::Canceled);
            continue;
        }
        assert_eq!(
            (sub.current_period_start, sub.current_period_end),
            (due, next)
        );
        let status = if sub.user_id == "user1" {
            SubscriptionStatus::Paused
        } else {
            SubscriptionStatus::Active
        };
        assert_eq!(sub.status, status, "{}", sub.id);
    }
    let renewals = billing_jobs::Entity::find()
        .filter(billing_jobs::Column::Kind.eq("renew"))
        .filter(billing_jobs::Column::Status.eq("pending"))
        .filter(billing_jobs::Column::DueAt.eq(next))
        .count(&app.db)
        .await
        .expect("count");
    assert_eq!(renewals as usize, SUBSCRIPTIONS - 1);

    // Every subject's events are numbered 1, 2, 3… in the order they were recorded; an
    // invoice's are created, finalized, paid.
    let recorded = events::Entity::find().all(&app.db).await.expect("events");
    let mut by_subject: HashMap<&str, Vec<&events::Model>> = HashMap::new();
    for event in &recorded {
        by_subject.entry(&event.subject_id).or_default().push(event);
    }
    for (subject, mut list) in by_subject {
        list.sort_by_key(|e| e.sequence);
        let sequences: Vec<i64> = list.iter().map(|e| e.sequence).collect();
        let expected: Vec<i64> = (1..=list.len() as i64).collect();
        assert_eq!(sequences, expected, "{subject}'s events");
    }
    let invoice = &all[0].id;
    let mut of_invoice: Vec<&events::Model> = recorded
        .iter()
        .filter(|e| &e.subject_id == invoice)
        .collect();
    of_invoice.sort_by_key(|e| e.sequence);
    let types: Vec<&str> = of_invoice.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["invoice.created", "invoice.finalized", "invoice.paid"]
    );
    assert_eq!(of_invoice[1].data["number"], json!(all[0].number));
    let subscription_updates = recorded
        .iter()
        .filter(|e| e.event_type == "subscription.updated")
        .count();
    assert!(subscription_updates >= billed, "{subscription_updates}");

    // The partner has one delivery per finalized invoice.
    let delivered = deliveries::Entity::find()
        .filter(deliveries::Column::PartnerId.eq(partner_id.as_str()))
        .count(&app.db)
        .await
        .expect("count");
    assert_eq!(delivered as usize, billed);
}
