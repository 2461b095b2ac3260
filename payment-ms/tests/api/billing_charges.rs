//! Charging a subscription's saved payment method: a charge run again after a crash meets the
//! first run's charge at the provider (the customer pays once), and a new payment method pays
//! what is due at once.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

use crate::billing::{
    advance, create_clock, create_plan, invoices_of, post_ok, subscribe, subscription,
};
use payment_ms::billing::entities::billing_jobs;
use payment_ms::{payments::entities::payments, providers::mock::entities::mock_sessions};
use testkit::db_tests;
use testkit::helpers::{Backend, TestApp, problem};

db_tests!(
    a_charge_run_again_after_a_crash_charges_once,
    a_new_payment_method_pays_what_is_due_at_once,
);

/// A subscription of `user` whose first charge (at the trial's end, 8 Jan 2027 01:00 on its
/// clock) was declined: past due, its retry due on 13 Jan 01:00. Answers (clock, subscription,
/// invoice).
async fn past_due(app: &TestApp, user: &str) -> (String, String, Value) {
    create_plan(app, "team", 5000, 7).await;
    let clock = create_clock(app, "2027-01-01T00:00:00Z").await;
    let sub = subscribe(
        app,
        json!({"plan": "team", "user_id": user, "payment_method": "pm_mock_declined",
               "test_clock": clock}),
    )
    .await;
    let id = sub["id"].as_str().expect("id").to_owned();
    advance(app, &clock, "2027-01-08T02:00:00Z").await;
    assert_eq!(subscription(app, &id).await["status"], "past_due");
    let invoice = invoices_of(app, &id).await.remove(0);
    assert_eq!(invoice["attempt_count"], 1);
    assert_eq!(invoice["next_payment_attempt"], "2027-01-13T01:00:00Z");
    (clock, id, invoice)
}

async fn a_charge_run_again_after_a_crash_charges_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (clock, sub_id, invoice) = past_due(&app, "bob").await;
    let invoice_id = invoice["id"].as_str().expect("id");
    let order_id = invoice["order_id"].as_str().expect("order");

    // The retry's first run reached the provider, which charged the card, and the process
    // died before recording it: the provider has the charge under the job's payment id (its
    // own, derived from the job's id), and we have no payment row.
    let job = billing_jobs::Entity::find()
        .filter(billing_jobs::Column::Kind.eq("charge"))
        .filter(billing_jobs::Column::SubjectId.eq(invoice_id))
        .filter(billing_jobs::Column::Status.eq("pending"))
        .one(&app.db)
        .await
        .unwrap()
        .expect("the retry's job");
    let payment_id = shared::ids::derived(shared::ids::PAYMENT, &job.id).expect("a job id");
    mock_sessions::ActiveModel {
        id: Set(shared::ids::new_id(shared::ids::MOCK_SESSION)),
        payment_id: Set(payment_id.clone()),
        status: Set("paid".to_owned()),
        amount: Set(5000),
        currency: Set("usd".to_owned()),
        amount_refunded: Set(0),
        created_at: Set(Utc::now()),
        updated_at: Set(Utc::now()),
    }
    .insert(&app.db)
    .await
    .unwrap();

    // The job runs again: it meets that charge instead of making another.
    advance(&app, &clock, "2027-01-14T00:00:00Z").await;
    let invoice = invoices_of(&app, &sub_id).await.remove(0);
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["amount_paid"], 5000);
    assert_eq!(subscription(&app, &sub_id).await["status"], "active");
    let made = payments::Entity::find()
        .filter(payments::Column::OrderId.eq(order_id))
        .all(&app.db)
        .await
        .unwrap();
    let statuses: Vec<(bool, String)> = made
        .iter()
        .map(|p| (p.id == payment_id, p.status.to_string()))
        .collect();
    assert_eq!(
        made.len(),
        2,
        "the declined first try and the retry: {statuses:?}"
    );
    assert!(
        statuses.contains(&(true, "succeeded".to_owned())),
        "{statuses:?}"
    );
    let sessions = mock_sessions::Entity::find()
        .filter(mock_sessions::Column::PaymentId.eq(payment_id.as_str()))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1, "the card was charged once");
}

async fn a_new_payment_method_pays_what_is_due_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (clock, sub_id, invoice) = past_due(&app, "bob").await;
    let path = format!("/api/v1/subscriptions/{sub_id}/payment-method");

    // Only its owner (or a trusted caller) changes it, to a payment method id.
    let other = app
        .post(
            &path,
            &app.token("mallory", &[]),
            &json!({"payment_method": "pm_mock_ok"}),
            None,
        )
        .await;
    assert_eq!(other.status(), 404);
    let bob = app.token("bob", &[]);
    for bad in [
        json!({"payment_method": ""}),
        json!({"payment_method": "pm with spaces"}),
    ] {
        let response = app.post(&path, &bob, &bad, None).await;
        assert_eq!(response.status(), 422);
        assert_eq!(
            problem(response).await["errors"][0]["field"],
            "payment_method"
        );
    }
    let response = app.post(&path, &bob, &json!({}), None).await;
    assert_eq!(response.status(), 422);
    assert_eq!(invoices_of(&app, &sub_id).await[0]["attempt_count"], 1);

    // A card that works: the open invoice is charged at once, not on 13 January.
    let response = app
        .post(&path, &bob, &json!({"payment_method": "pm_mock_ok"}), None)
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let sub: Value = response.json().await.expect("subscription");
    assert_eq!(sub["has_payment_method"], true);
    assert_eq!(sub["status"], "active");
    let paid = invoices_of(&app, &sub_id).await.remove(0);
    assert_eq!(paid["id"], invoice["id"]);
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["paid_at"], "2027-01-08T02:00:00Z");
    // The retry that was scheduled finds nothing to do.
    advance(&app, &clock, "2027-01-14T00:00:00Z").await;
    let invoices = invoices_of(&app, &sub_id).await;
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0]["status"], "paid");

    // An ended subscription takes no payment method.
    post_ok(
        &app,
        &format!("/api/v1/subscriptions/{sub_id}/cancel"),
        json!({}),
    )
    .await;
    let response = app
        .post(&path, &bob, &json!({"payment_method": "pm_mock_ok"}), None)
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(problem(response).await["code"], "subscription_ended");
}
