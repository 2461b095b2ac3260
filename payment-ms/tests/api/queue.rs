//! The webhook delivery queue's statements on their own, on both databases: what a claim
//! takes and in what order, what it leaves to whom, and how leases end.

use std::time::Duration;

use chrono::{DateTime, Utc};
use payment_ms::clock::{Clock, SystemClock};
use payment_ms::platform::db::after;
use payment_ms::webhooks::dispatcher::queue::{self, Claimed};
use payment_ms::webhooks::partners::new_partner;
use payment_ms::{
    events::entities::events, webhooks::entities::deliveries, webhooks::entities::partners,
};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, IntoActiveModel};

use testkit::db_tests;
use testkit::helpers::{Backend, TestApp};

db_tests!(
    each_partner_gets_its_oldest_due_deliveries_up_to_its_quota,
    what_a_partner_may_still_take_is_respected,
    backed_off_and_disabled_partners_are_skipped,
    a_given_back_claim_is_taken_again_without_counting,
    a_lease_that_runs_out_lets_another_worker_claim_and_counts,
);

const LEASE: Duration = Duration::from_secs(21);

/// A stack whose dispatcher does not run: the queue is the test's alone.
async fn quiet(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| c.webhooks.enabled = false, |_| {}).await
}

async fn partner(db: &DatabaseConnection, name: &str, at: DateTime<Utc>) -> partners::Model {
    new_partner(name, "http://127.0.0.1:9/hook", &[], at)
        .into_active_model()
        .insert(db)
        .await
        .unwrap()
}

/// A pending delivery to `partner`, due `due_in` after `at` (negative: overdue); its id.
async fn delivery(
    db: &DatabaseConnection,
    partner: &partners::Model,
    at: DateTime<Utc>,
    due_in: chrono::Duration,
) -> String {
    let event = events::Model {
        id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
        event_type: "order.created".to_owned(),
        subject_id: "ord_1".to_owned(),
        data: serde_json::json!({}),
        created_at: at,
        sequence: 1,
        causation_id: None,
        correlation_id: None,
    }
    .into_active_model()
    .insert(db)
    .await
    .unwrap();
    deliveries::Model {
        id: format!("dlv_{}", uuid::Uuid::new_v4().simple()),
        event_id: event.id,
        partner_id: partner.id.clone(),
        status: "pending".to_owned(),
        attempts: 0,
        round_start: 0,
        next_attempt_at: at + due_in,
        locked_until: None,
        last_status_code: None,
        last_error: None,
        created_at: at,
        updated_at: at,
        completed_at: None,
        unrecorded_claims: 0,
    }
    .into_active_model()
    .insert(db)
    .await
    .unwrap()
    .id
}

/// `n` deliveries to `partner`, due every 2 s from `first` seconds after `at` (negative:
/// overdue); their ids, oldest due first.
async fn backlog(
    db: &DatabaseConnection,
    partner: &partners::Model,
    at: DateTime<Utc>,
    n: i64,
    first: i64,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(delivery(db, partner, at, chrono::Duration::seconds(first + 2 * i)).await);
    }
    ids
}

/// The ids claimed of `partner`, sorted (a claim says which, not in what order).
fn ids_of(claimed: &[Claimed], partner: &partners::Model) -> Vec<String> {
    let mut ids: Vec<String> = claimed
        .iter()
        .filter(|c| c.partner_id == partner.id)
        .map(|c| c.id.clone())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[String]) -> Vec<String> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids
}

async fn each_partner_gets_its_oldest_due_deliveries_up_to_its_quota(backend: Backend) {
    // Leases that outlast the test: only what is due and unleased is claimed.
    const HOUR: Duration = Duration::from_secs(3600);
    let app = quiet(backend).await;
    let at = SystemClock.now();
    let a = partner(&app.db, "a", at).await;
    let b = partner(&app.db, "b", at).await;
    let a_due = backlog(&app.db, &a, at, 5, -100).await;
    let b_due = backlog(&app.db, &b, at, 3, -99).await;
    let not_yet = delivery(&app.db, &a, at, chrono::Duration::seconds(60)).await;

    // The oldest due first, across partners: a0 (-100 s), b0 (-99 s), a1 (-98 s).
    let first = queue::claim(&app.db, at, HOUR, 3, 2, &[]).await.unwrap();
    assert_eq!(ids_of(&first, &a), sorted(&a_due[..2]));
    assert_eq!(ids_of(&first, &b), sorted(&b_due[..1]));
    assert!(first.iter().all(|c| c.unrecorded_claims == 1));

    // What is leased is not taken again; of the rest, each partner's quota.
    let second = queue::claim(&app.db, at, HOUR, 100, 2, &[]).await.unwrap();
    assert_eq!(ids_of(&second, &a), sorted(&a_due[2..4]));
    assert_eq!(ids_of(&second, &b), sorted(&b_due[1..]));
    let third = queue::claim(&app.db, at, HOUR, 100, 2, &[]).await.unwrap();
    assert_eq!(ids_of(&third, &a), sorted(&a_due[4..]));
    assert_eq!(third.len(), 1);
    assert!(
        queue::claim(&app.db, at, HOUR, 100, 2, &[])
            .await
            .unwrap()
            .is_empty()
    );
    // Not before it is due.
    let later = after(at, Duration::from_secs(61));
    let due_now = queue::claim(&app.db, later, HOUR, 100, 2, &[])
        .await
        .unwrap();
    assert_eq!(ids_of(&due_now, &a), [not_yet]);
}

async fn what_a_partner_may_still_take_is_respected(backend: Backend) {
    let app = quiet(backend).await;
    let at = SystemClock.now();
    let a = partner(&app.db, "a", at).await;
    let b = partner(&app.db, "b", at).await;
    let c = partner(&app.db, "c", at).await;
    let a_due = backlog(&app.db, &a, at, 4, -100).await;
    backlog(&app.db, &b, at, 4, -100).await;
    let c_due = backlog(&app.db, &c, at, 4, -100).await;

    // a may take one more, b none (at its room); c, held by no one here, its quota.
    let free = [(a.id.clone(), 1), (b.id.clone(), 0)];
    let claimed = queue::claim(&app.db, at, LEASE, 100, 3, &free)
        .await
        .unwrap();
    assert_eq!(ids_of(&claimed, &a), sorted(&a_due[..1]));
    assert!(ids_of(&claimed, &b).is_empty());
    assert_eq!(ids_of(&claimed, &c), sorted(&c_due[..3]));
}

async fn backed_off_and_disabled_partners_are_skipped(backend: Backend) {
    let app = quiet(backend).await;
    let at = SystemClock.now();
    let a = partner(&app.db, "a", at).await;
    let b = partner(&app.db, "b", at).await;
    let a_due = backlog(&app.db, &a, at, 2, -100).await;
    backlog(&app.db, &b, at, 2, -100).await;
    let mut backed_off = a.clone().into_active_model();
    backed_off.backoff_until = sea_orm::Set(Some(after(at, Duration::from_secs(30))));
    backed_off.failing_attempts = sea_orm::Set(5);
    backed_off.update(&app.db).await.unwrap();
    let mut disabled = b.clone().into_active_model();
    disabled.active = sea_orm::Set(false);
    disabled.update(&app.db).await.unwrap();

    assert!(
        queue::claim(&app.db, at, LEASE, 100, 8, &[])
            .await
            .unwrap()
            .is_empty()
    );
    // The back-off over, its deliveries go again; the disabled partner's never.
    let over = after(at, Duration::from_secs(31));
    let claimed = queue::claim(&app.db, over, LEASE, 100, 8, &[])
        .await
        .unwrap();
    assert_eq!(ids_of(&claimed, &a), sorted(&a_due));
    assert!(ids_of(&claimed, &b).is_empty());
}

async fn a_given_back_claim_is_taken_again_without_counting(backend: Backend) {
    let app = quiet(backend).await;
    let at = SystemClock.now();
    let a = partner(&app.db, "a", at).await;
    let due = backlog(&app.db, &a, at, 1, -100).await;

    let claimed = queue::claim(&app.db, at, LEASE, 10, 8, &[]).await.unwrap();
    assert_eq!(ids_of(&claimed, &a), due);
    queue::release(&app.db, due.clone()).await.unwrap();
    let row = deliveries::Entity::find_by_id(&due[0])
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.locked_until, row.unrecorded_claims), (None, 0));

    let again = queue::claim(&app.db, at, LEASE, 10, 8, &[]).await.unwrap();
    assert_eq!(ids_of(&again, &a), due);
    assert_eq!(again[0].unrecorded_claims, 1);
}

async fn a_lease_that_runs_out_lets_another_worker_claim_and_counts(backend: Backend) {
    let app = quiet(backend).await;
    let at = SystemClock.now();
    let a = partner(&app.db, "a", at).await;
    let due = backlog(&app.db, &a, at, 1, -100).await;

    let first = queue::claim(&app.db, at, LEASE, 10, 8, &[]).await.unwrap();
    assert_eq!(first[0].unrecorded_claims, 1);
    // Within the lease no one else takes it; after it, the next claim does, and counts it.
    let within = after(at, LEASE - Duration::from_secs(1));
    assert!(
        queue::claim(&app.db, within, LEASE, 10, 8, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let past = after(at, LEASE + Duration::from_secs(1));
    let second = queue::claim(&app.db, past, LEASE, 10, 8, &[])
        .await
        .unwrap();
    assert_eq!(ids_of(&second, &a), due);
    assert_eq!(second[0].unrecorded_claims, 2);
}
