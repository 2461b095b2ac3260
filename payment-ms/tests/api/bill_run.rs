//! The set-based bill run makes, in batches, what each job would make alone: 600 subscriptions
//! due at once (more than two batches), two of them not plain (one canceling at the period's
//! end, one paused) and one whose card is declined, renewed, finalized, charged and paid
//! through the real clock's runner. Checked: the invoices and their numbers, the orders and
//! theirs, the payments, the decline's dunning, the new periods and their renewals, every
//! subject's events numbered 1, 2, 3… without a gap, and a partner's deliveries.

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use payment_ms::billing::entities::{billing_jobs, invoices, subscriptions};
use payment_ms::billing::model::{InvoiceStatus, SubscriptionStatus};
use payment_ms::events::entities::events;
use payment_ms::orders::entities::orders;
use payment_ms::payments::entities::payments;
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

    // user0 cancels at the period's end, user1 is paused: their renewals run alone. user2's
    // card is declined.
    let due = testkit::billing::due_now_with(
        &app.db,
        plan_id,
        SUBSCRIPTIONS,
        Some("pm_mock_ok"),
        |i, sub| match i {
            0 => sub.cancel_at_period_end = true,
            1 => sub.status = SubscriptionStatus::Paused,
            2 => sub.payment_method = Some("pm_mock_declined".to_owned()),
            _ => {}
        },
    )
    .await
    .expect("subscriptions");

    let billed = SUBSCRIPTIONS - 2;
    testkit::billing::run_until_settled(&app.db, || async {
        let paid = invoices::Entity::find()
            .filter(invoices::Column::Status.eq(InvoiceStatus::Paid))
            .count(&app.db)
            .await
            .expect("count") as usize;
        (paid >= billed - 1, format!("{paid} invoices paid"))
    })
    .await;
    // The figures' running totals hold what their rows add up to.
    testkit::billing::assert_totals_match(&app.db).await;

    // One invoice per billed subscription, numbered 1…598 without a gap; all paid but the
    // declined one, open with its attempt counted and its retry scheduled.
    let all = invoices::Entity::find()
        .all(&app.db)
        .await
        .expect("invoices");
    assert_eq!(all.len(), billed);
    let next = due + chrono::Duration::days(1);
    let subs = subscriptions::Entity::find()
        .all(&app.db)
        .await
        .expect("subscriptions");
    let declined_sub = subs.iter().find(|s| s.user_id == "user2").expect("user2");
    for invoice in &all {
        assert_eq!(
            (invoice.total, invoice.period_start, invoice.period_end),
            (199, due, next)
        );
        if invoice.subscription_id.as_deref() == Some(declined_sub.id.as_str()) {
            assert_eq!(invoice.status, InvoiceStatus::Open);
            assert_eq!(invoice.attempt_count, 1);
            assert!(
                invoice
                    .last_error
                    .as_deref()
                    .unwrap_or("")
                    .contains("declined")
            );
            assert!(invoice.next_attempt_at.is_some_and(|t| t > due));
        } else {
            assert_eq!(invoice.status, InvoiceStatus::Paid, "{}", invoice.id);
            assert_eq!(invoice.amount_paid, 199);
        }
    }
    assert_eq!(declined_sub.status, SubscriptionStatus::PastDue);
    // One payment per invoice, for its order, with the invoice in its metadata.
    let made = payments::Entity::find()
        .all(&app.db)
        .await
        .expect("payments");
    assert_eq!(made.len(), billed);
    let by_order: HashMap<&str, &payments::Model> =
        made.iter().map(|p| (p.order_id.as_str(), p)).collect();
    for invoice in &all {
        let payment = by_order[invoice.order_id.as_deref().expect("an order")];
        assert_eq!(payment.amount, 199);
        assert_eq!(payment.metadata["invoice_id"], json!(invoice.id));
        let status = if invoice.status == InvoiceStatus::Paid {
            "succeeded"
        } else {
            "failed"
        };
        assert_eq!(payment.status.as_str(), status);
    }
    let year = chrono::Datelike::year(&all[0].finalized_at.expect("finalized"));
    let mut numbers: Vec<String> = all.iter().filter_map(|i| i.number.clone()).collect();
    numbers.sort();
    let expected: Vec<String> = (1..=billed).map(|n| format!("INV-{year}-{n:06}")).collect();
    assert_eq!(numbers, expected);

    // Each invoice's order: paid (the declined one's `payment_failed`), numbered 1…598 without
    // a gap, its amount the invoice's.
    let orders = orders::Entity::find().all(&app.db).await.expect("orders");
    assert_eq!(orders.len(), billed);
    let by_id: HashMap<&str, &orders::Model> = orders.iter().map(|o| (o.id.as_str(), o)).collect();
    for invoice in &all {
        let order = by_id[invoice.order_id.as_deref().expect("an order")];
        let status = if invoice.status == InvoiceStatus::Paid {
            "paid"
        } else {
            "payment_failed"
        };
        assert_eq!(order.status.as_str(), status);
        assert_eq!(order.total_amount, invoice.total);
        assert_eq!(order.reference.as_deref(), Some(invoice.id.as_str()));
    }
    let mut numbers: Vec<String> = orders.iter().filter_map(|o| o.number.clone()).collect();
    numbers.sort();
    let expected: Vec<String> = (1..=billed).map(|n| format!("ORD-{year}-{n:06}")).collect();
    assert_eq!(numbers, expected);

    // The new periods, and the next renewals; the one canceling ended, the paused one renewed
    // without an invoice.
    for sub in &subs {
        if sub.user_id == "user0" {
            assert_eq!(sub.status, SubscriptionStatus::Canceled);
            continue;
        }
        assert_eq!(
            (sub.current_period_start, sub.current_period_end),
            (due, next)
        );
        let status = match sub.user_id.as_str() {
            "user1" => SubscriptionStatus::Paused,
            "user2" => SubscriptionStatus::PastDue,
            _ => SubscriptionStatus::Active,
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
    let paid_one = all
        .iter()
        .find(|i| i.status == InvoiceStatus::Paid)
        .expect("a paid invoice");
    let types_of = |subject: &str| {
        let mut of: Vec<&events::Model> = recorded
            .iter()
            .filter(|e| e.subject_id == subject)
            .collect();
        of.sort_by_key(|e| e.sequence);
        of.iter().map(|e| e.event_type.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        types_of(&paid_one.id),
        ["invoice.created", "invoice.finalized", "invoice.paid"]
    );
    let order_id = paid_one.order_id.as_deref().expect("order");
    assert_eq!(
        types_of(order_id),
        ["order.created", "order.payment_pending", "order.paid"]
    );
    assert_eq!(
        types_of(&by_order[order_id].id),
        ["payment.created", "payment.succeeded"]
    );
    // The payment's creation is told as pending, its success as succeeded.
    let payment_id = &by_order[order_id].id;
    let told: Vec<&serde_json::Value> = {
        let mut of: Vec<&events::Model> = recorded
            .iter()
            .filter(|e| &e.subject_id == payment_id)
            .collect();
        of.sort_by_key(|e| e.sequence);
        of.iter().map(|e| &e.data["status"]).collect()
    };
    assert_eq!(told, [&json!("pending"), &json!("succeeded")]);
    let finalized = recorded
        .iter()
        .find(|e| e.subject_id == paid_one.id && e.event_type == "invoice.finalized")
        .expect("invoice.finalized");
    assert_eq!(finalized.data["number"], json!(paid_one.number));
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
