//! Stock held at an external inventory service (a local fake of the documented API), each
//! checkout a saga: holds, refusals, commits on payment, releases when unpaid or canceled, a
//! late payment held again or refunded, and an unreachable service that leaves nothing held.

use std::time::Duration;

use sea_orm::EntityTrait;
use serde_json::{Value, json};

use payment_ms::saga::entities::inventory_sagas;
use payment_ms::saga::external::{ExternalConfig, LatePayment};
use testkit::db_tests;
use testkit::helpers::{Backend, TestApp, eventually, problem};
use testkit::inventory::{FakeInventory, Status};

db_tests!(
    checkouts_hold_and_commit_at_the_inventory_service,
    a_late_payment_is_held_again_or_refunded,
    an_unreachable_service_holds_nothing_and_leaves_nothing,
);

async fn spawn(backend: Backend, fake: &FakeInventory) -> TestApp {
    let url = fake.url.parse().expect("the fake's URL");
    TestApp::spawn_with(
        backend,
        move |c| {
            c.external_inventory = Some(ExternalConfig {
                url,
                token: None,
                timeout: Duration::from_secs(2),
                late_payment: LatePayment::ReserveAgain,
                retry_max: Duration::from_secs(1),
            })
        },
        |_| {},
    )
    .await
}

/// An order of `quantity` × `sku` (and an untracked gift note) for `user`; answers its id.
async fn order(app: &TestApp, user: &str, sku: &str, quantity: i64) -> String {
    let response = app
        .post(
            "/api/v1/orders",
            &app.service_token(),
            &json!({"user_id": user, "currency": "usd", "items": [
                {"sku": sku, "name": "Thing", "quantity": quantity, "unit_price": 2500},
                {"sku": "gift-note", "name": "Gift note", "quantity": 1, "unit_price": 0}]}),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.expect("order");
    order["id"].as_str().expect("id").to_owned()
}

/// Checks `order` out as `user`; answers the payment id.
async fn checkout(app: &TestApp, user: &str, order: &str) -> String {
    let response = app.checkout(user, order, None).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let payment: Value = response.json().await.expect("payment");
    payment["id"].as_str().expect("id").to_owned()
}

async fn saga_state(app: &TestApp, payment_id: &str) -> String {
    inventory_sagas::Entity::find_by_id(payment_id)
        .one(&app.db)
        .await
        .expect("query")
        .map(|s| s.state)
        .unwrap_or_default()
}

async fn wait_for_state(app: &TestApp, payment_id: &str, state: &str) {
    eventually(Duration::from_secs(20), state, || async {
        saga_state(app, payment_id).await == state
    })
    .await;
}

fn reservation(payment_id: &str) -> String {
    format!("rsv-{payment_id}")
}

async fn checkouts_hold_and_commit_at_the_inventory_service(backend: Backend) {
    let fake = FakeInventory::start().await;
    fake.set_stock("lamp", 2);
    let app = spawn(backend, &fake).await;

    // A checkout holds the tracked line there (the gift note is not tracked by it).
    let first = order(&app, "ada", "lamp", 1).await;
    let paid = checkout(&app, "ada", &first).await;
    {
        let ledger = fake.ledger();
        let held = &ledger.reservations[&reservation(&paid)];
        assert_eq!(held.status, Status::Active);
        assert_eq!(held.lines, [("lamp".to_owned(), 1)]);
    }
    assert_eq!(saga_state(&app, &paid).await, "awaiting_payment");
    // More than is left: 409, and nothing is held for it.
    let greedy = order(&app, "bob", "lamp", 2).await;
    let response = app.checkout("bob", &greedy, None).await;
    assert_eq!(response.status(), 409);
    let body = problem(response).await;
    assert_eq!(body["code"], "out_of_stock");
    assert_eq!(body["detail"], "lamp: 2 wanted, 1 available");

    // Paid: committed there once.
    assert_eq!(app.press(&paid, "pay").await.status(), 303);
    assert_eq!(app.verify("ada", &paid).await["status"], "succeeded");
    wait_for_state(&app, &paid, "done").await;
    {
        let ledger = fake.ledger();
        assert_eq!(ledger.on_hand["lamp"], 1);
        let committed = &ledger.reservations[&reservation(&paid)];
        assert_eq!(
            (committed.status, committed.commits_applied),
            (Status::Committed, 1)
        );
    }

    // Declined: released. Canceled: released.
    let second = order(&app, "cy", "lamp", 1).await;
    let declined = checkout(&app, "cy", &second).await;
    assert_eq!(app.press(&declined, "decline").await.status(), 303);
    assert_eq!(app.verify("cy", &declined).await["status"], "failed");
    wait_for_state(&app, &declined, "released").await;
    let third = order(&app, "dee", "lamp", 1).await;
    let dropped = checkout(&app, "dee", &third).await;
    let response = app
        .post(
            &format!("/api/v1/orders/{third}/cancel"),
            &app.token("dee", &[]),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    wait_for_state(&app, &dropped, "released").await;
    let ledger = fake.ledger();
    for id in [&declined, &dropped] {
        assert_eq!(
            ledger.reservations[&reservation(id)].status,
            Status::Released
        );
    }
    assert_eq!(ledger.on_hand["lamp"], 1);
}

async fn a_late_payment_is_held_again_or_refunded(backend: Backend) {
    let fake = FakeInventory::start().await;
    fake.set_stock("lamp", 1);
    fake.set_stock("vase", 1);
    let app = spawn(backend, &fake).await;

    // Ada's reservation lapses at the service before her payment arrives; the lamp is still
    // there: it is reserved again and committed.
    let lamp = order(&app, "ada", "lamp", 1).await;
    let late = checkout(&app, "ada", &lamp).await;
    fake.lapse(&reservation(&late));
    assert_eq!(app.press(&late, "pay").await.status(), 303);
    assert_eq!(app.verify("ada", &late).await["status"], "succeeded");
    wait_for_state(&app, &late, "done").await;
    {
        let ledger = fake.ledger();
        assert_eq!(ledger.on_hand["lamp"], 0);
        let again = &ledger.reservations[&format!("{}-again", reservation(&late))];
        assert_eq!(
            (again.status, again.commits_applied),
            (Status::Committed, 1)
        );
    }
    let status = app
        .get_json(&format!("/api/v1/orders/{lamp}"), &app.token("ada", &[]))
        .await["status"]
        .clone();
    assert_eq!(status, "paid");

    // Bob's lapses and the vase goes to Cy meanwhile: Bob's payment is refunded in full.
    let bobs = order(&app, "bob", "vase", 1).await;
    let too_late = checkout(&app, "bob", &bobs).await;
    fake.lapse(&reservation(&too_late));
    let cys = order(&app, "cy", "vase", 1).await;
    let cy_payment = checkout(&app, "cy", &cys).await;
    assert_eq!(app.press(&too_late, "pay").await.status(), 303);
    assert_eq!(app.verify("bob", &too_late).await["status"], "succeeded");
    wait_for_state(&app, &too_late, "refunded").await;
    let bob = app.token("bob", &[]);
    eventually(Duration::from_secs(10), "the order refunded", || async {
        app.get_json(&format!("/api/v1/orders/{bobs}"), &bob).await["status"] == "refunded"
    })
    .await;
    let payment = app
        .get_json(&format!("/api/v1/payments/{too_late}"), &bob)
        .await;
    assert_eq!(payment["status"], "refunded");
    // Cy still holds the vase; nothing was committed for Bob.
    let ledger = fake.ledger();
    assert_eq!(
        ledger.reservations[&reservation(&cy_payment)].status,
        Status::Active
    );
    assert_eq!(ledger.on_hand["vase"], 1);
    assert!(
        !ledger.reservations.values().any(|r| r.commits_applied > 1),
        "nothing committed twice"
    );
}

async fn an_unreachable_service_holds_nothing_and_leaves_nothing(backend: Backend) {
    let fake = FakeInventory::start().await;
    fake.set_stock("lamp", 5);
    let app = spawn(backend, &fake).await;
    let id = order(&app, "ada", "lamp", 1).await;
    fake.set_down(true);
    let response = app.checkout("ada", &id, None).await;
    assert_eq!(response.status(), 503);
    assert_eq!(problem(response).await["code"], "dependency_unavailable");
    let stuck = inventory_sagas::Entity::find()
        .all(&app.db)
        .await
        .expect("sagas");
    assert_eq!(stuck.len(), 1);
    assert_eq!(stuck[0].state, "reserving");
    // Back up: the checkout can be made, and the saga of the one that died is released once
    // its lease is over (whatever the service may have held for it).
    fake.set_down(false);
    let paid = checkout(&app, "ada", &id).await;
    eventually(
        Duration::from_secs(30),
        "the stuck saga released",
        || async { saga_state(&app, &stuck[0].payment_id).await == "released" },
    )
    .await;
    assert_eq!(saga_state(&app, &paid).await, "awaiting_payment");
}
