//! One contract, two providers: the flows a user of the API relies on, run against the mock
//! provider and against Stripe (behind a local stand-in speaking Stripe's shapes), on both
//! databases. A provider passes when the API answers the same whichever is configured.

use std::collections::HashSet;
use std::time::Duration;

use payment_ms::providers::stripe::{Mode, StripeConfig};
use payment_ms::{payments::entities::payments, providers::mock::entities::mock_sessions};
use reqwest::Response;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::fake_stripe::{FakeStripe, SECRET_KEY, WEBHOOK_SECRET};
use testkit::helpers::{Backend, TestApp, checkout_body, problem};

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Mock,
    Stripe,
}

/// Declares each `async fn name(kind: Kind, backend: Backend)` for both providers on both
/// databases.
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod mock_provider {
            mod sqlite {
                $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::super::$name(super::super::Kind::Mock, testkit::helpers::Backend::Sqlite).await
                })*
            }
            mod postgres {
                $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: build and run the tests with TEST_DATABASE_URL set (scripts/test does)")]
                async fn $name() {
                    super::super::$name(super::super::Kind::Mock, testkit::helpers::Backend::Postgres).await
                })*
            }
        }
        mod stripe_provider {
            mod sqlite {
                $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::super::$name(super::super::Kind::Stripe, testkit::helpers::Backend::Sqlite).await
                })*
            }
            mod postgres {
                $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(postgres_tests), ignore = "needs PostgreSQL: build and run the tests with TEST_DATABASE_URL set (scripts/test does)")]
                async fn $name() {
                    super::super::$name(super::super::Kind::Stripe, testkit::helpers::Backend::Postgres).await
                })*
            }
        }
    };
}

contract_tests!(
    pay_and_verify,
    cancel_before_paying,
    refund_in_parts,
    concurrent_refunds_never_over_refund,
    a_refund_key_refunds_once,
);

pub fn stripe_config(api_base: &str, mode: Mode) -> StripeConfig {
    StripeConfig {
        secret_key: SecretString::from(SECRET_KEY),
        api_base: url::Url::parse(api_base).expect("url"),
        webhook_secret: Some(SecretString::from(WEBHOOK_SECRET)),
        mode,
        timeout: Duration::from_secs(5),
        webhook_tolerance: Duration::from_secs(300),
    }
}

/// A stack whose payment-ms has Stripe, configured so, as its default provider.
pub async fn spawn_stripe(backend: Backend, config: StripeConfig) -> TestApp {
    TestApp::spawn_with(
        backend,
        |c| {
            c.payment_provider = "stripe".to_owned();
            c.stripe = Some(config);
        },
        |_| {},
    )
    .await
}

/// A new order of `user`, checked out with a saved payment method.
pub async fn checkout_with_method(app: &TestApp, user: &str, method: &str) -> Response {
    let order = app.create_order(user).await;
    let mut body = checkout_body();
    body["payment_method"] = json!(method);
    app.post(
        &format!("/api/v1/orders/{}/checkout", order["id"].as_str().unwrap()),
        &app.token(user, &[]),
        &body,
        None,
    )
    .await
}

pub struct Harness {
    pub app: TestApp,
    pub stripe: Option<FakeStripe>,
}

impl Harness {
    pub async fn spawn(kind: Kind, backend: Backend) -> Harness {
        match kind {
            Kind::Mock => Harness {
                app: TestApp::spawn(backend).await,
                stripe: None,
            },
            Kind::Stripe => {
                let fake = FakeStripe::start().await;
                let app = spawn_stripe(backend, stripe_config(&fake.uri(), Mode::Checkout)).await;
                Harness {
                    app,
                    stripe: Some(fake),
                }
            }
        }
    }

    /// The buyer pays on the provider's page.
    pub async fn buyer_pays(&self, payment: &Value) {
        match &self.stripe {
            None => {
                let id = payment["id"].as_str().expect("id");
                assert_eq!(self.app.press(id, "pay").await.status(), 303);
            }
            Some(fake) => {
                fake.pay(payment["provider_reference"].as_str().expect("reference"));
            }
        }
    }

    /// An order of 48.48 USD paid by `user`; returns (order, payment).
    pub async fn paid(&self, user: &str) -> (Value, Value) {
        let (order, payment) = self.app.order_and_payment(user).await;
        self.buyer_pays(&payment).await;
        let payment = self
            .app
            .verify(user, payment["id"].as_str().expect("id"))
            .await;
        assert_eq!(payment["status"], "succeeded");
        (order, payment)
    }

    pub async fn refund(&self, payment_id: &str, body: Value, key: Option<&str>) -> Response {
        self.app
            .post(
                &format!("/api/v1/payments/{payment_id}/refunds"),
                &self.app.admin_token(),
                &body,
                key,
            )
            .await
    }

    /// What the provider itself has refunded for this payment.
    pub async fn provider_refunded(&self, payment_id: &str) -> i64 {
        match &self.stripe {
            None => {
                mock_sessions::Entity::find()
                    .filter(mock_sessions::Column::PaymentId.eq(payment_id))
                    .one(&self.app.db)
                    .await
                    .expect("query")
                    .expect("session")
                    .amount_refunded
            }
            Some(fake) => {
                let intent = self
                    .payment_row(payment_id)
                    .await
                    .provider_payment_reference;
                fake.refunds()
                    .iter()
                    .filter(|r| r["payment_intent"].as_str() == intent.as_deref())
                    .map(|r| r["amount"].as_i64().unwrap_or(0))
                    .sum()
            }
        }
    }

    pub async fn payment_row(&self, payment_id: &str) -> payments::Model {
        payments::Entity::find_by_id(payment_id)
            .one(&self.app.db)
            .await
            .expect("query")
            .expect("payment row")
    }
}

async fn pay_and_verify(kind: Kind, backend: Backend) {
    let h = Harness::spawn(kind, backend).await;
    let (order, payment) = h.app.order_and_payment("alice").await;
    assert_eq!(payment["status"], "pending");
    assert_eq!(payment["amount"], 4848);
    assert!(
        payment["checkout_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http"))
    );
    let id = payment["id"].as_str().unwrap();
    // Not paid yet: verify changes nothing.
    assert_eq!(h.app.verify("alice", id).await["status"], "pending");

    h.buyer_pays(&payment).await;
    let paid = h.app.verify("alice", id).await;
    assert_eq!(paid["status"], "succeeded");
    let again = h.app.verify("alice", id).await;
    assert_eq!(again["status"], "succeeded");
    assert_eq!(
        h.app.events_of(id).await,
        ["payment.created", "payment.succeeded"]
    );
    let order_id = order["id"].as_str().unwrap();
    let order = h
        .app
        .get(
            &format!("/api/v1/orders/{order_id}"),
            &h.app.token("alice", &[]),
        )
        .await;
    assert_eq!(order.json::<Value>().await.unwrap()["status"], "paid");
    assert_eq!(
        h.app.events_of(order_id).await,
        ["order.created", "order.payment_pending", "order.paid"]
    );
}

async fn cancel_before_paying(kind: Kind, backend: Backend) {
    let h = Harness::spawn(kind, backend).await;
    let (_, payment) = h.app.order_and_payment("alice").await;
    let id = payment["id"].as_str().unwrap();
    let response = h
        .app
        .post(
            &format!("/api/v1/payments/{id}/cancel"),
            &h.app.token("alice", &[]),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "canceled"
    );
    // The provider's checkout is closed too: paying it now is refused.
    match &h.stripe {
        None => assert_eq!(h.app.press(id, "pay").await.status(), 409),
        Some(fake) => {
            let reference = payment["provider_reference"].as_str().unwrap();
            assert_eq!(fake.session(reference)["status"], "expired");
        }
    }
    assert_eq!(
        h.app.events_of(id).await,
        ["payment.created", "payment.canceled"]
    );
    // A canceled payment cannot be refunded.
    let refused = h.refund(id, json!({}), None).await;
    assert_eq!(refused.status(), 409);
    assert_eq!(problem(refused).await["code"], "payment_not_refundable");
}

async fn refund_in_parts(kind: Kind, backend: Backend) {
    let h = Harness::spawn(kind, backend).await;
    let (order, payment) = h.paid("alice").await;
    let id = payment["id"].as_str().unwrap();
    let order_id = order["id"].as_str().unwrap();

    // Only admins refund.
    let owner = h
        .app
        .post(
            &format!("/api/v1/payments/{id}/refunds"),
            &h.app.token("alice", &[]),
            &json!({"amount": 100}),
            None,
        )
        .await;
    assert_eq!(owner.status(), 403);

    let first = h
        .refund(
            id,
            json!({"amount": 1000, "reason": "requested_by_customer"}),
            Some("r-1"),
        )
        .await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["amount"], 1000);
    assert!(first["provider_reference"].is_string());
    let now = h
        .app
        .get(
            &format!("/api/v1/payments/{id}"),
            &h.app.token("alice", &[]),
        )
        .await;
    let now: Value = now.json().await.unwrap();
    assert_eq!(now["status"], "partially_refunded");
    assert_eq!(now["amount_refunded"], 1000);

    // More than remains: refused, nothing changes.
    let too_much = h.refund(id, json!({"amount": 3849}), None).await;
    assert_eq!(too_much.status(), 422);
    let too_much = problem(too_much).await;
    assert_eq!(too_much["code"], "refund_exceeds_remaining");
    assert!(
        too_much["detail"].as_str().unwrap().contains("3848"),
        "{too_much}"
    );

    // No amount: the rest.
    let rest = h.refund(id, json!({}), Some("r-2")).await;
    assert_eq!(rest.status(), 201);
    let rest: Value = rest.json().await.unwrap();
    assert_eq!(rest["amount"], 3848);
    let row = h.payment_row(id).await;
    assert_eq!(
        (row.status.as_str(), row.amount_refunded),
        ("refunded", 4848)
    );
    assert_eq!(h.provider_refunded(id).await, 4848);

    let nothing_left = h.refund(id, json!({"amount": 1}), None).await;
    assert_eq!(nothing_left.status(), 409);
    assert_eq!(
        problem(nothing_left).await["code"],
        "payment_not_refundable"
    );

    assert_eq!(
        h.app.events_of(id).await,
        [
            "payment.created",
            "payment.succeeded",
            "payment.refunded",
            "payment.refunded"
        ]
    );
    assert_eq!(
        h.app.events_of(order_id).await,
        [
            "order.created",
            "order.payment_pending",
            "order.paid",
            "order.refunded"
        ]
    );
    let event = payment_ms::events::entities::events::Entity::find()
        .filter(payment_ms::events::entities::events::Column::SubjectId.eq(id))
        .filter(payment_ms::events::entities::events::Column::EventType.eq("payment.refunded"))
        .all(&h.app.db)
        .await
        .unwrap();
    assert_eq!(event[0].data["refund"]["amount"], 1000);
    assert_eq!(event[0].data["amount_refunded"], 1000);
    assert_eq!(event[1].data["status"], "refunded");

    // The owner sees the refunds; another user does not.
    let list = h
        .app
        .get(
            &format!("/api/v1/payments/{id}/refunds"),
            &h.app.token("alice", &[]),
        )
        .await;
    assert_eq!(list.status(), 200);
    let list: Value = list.json().await.unwrap();
    let amounts: Vec<i64> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [3848, 1000]);
    let other = h
        .app
        .get(
            &format!("/api/v1/payments/{id}/refunds"),
            &h.app.token("mallory", &[]),
        )
        .await;
    assert_eq!(other.status(), 404);
}

/// Ten admins press "refund 1000" at once on a 4848 payment: four succeed, six are refused,
/// and neither our books nor the provider's ever exceed what was paid.
async fn concurrent_refunds_never_over_refund(kind: Kind, backend: Backend) {
    let h = Harness::spawn(kind, backend).await;
    let (_, payment) = h.paid("alice").await;
    let id = payment["id"].as_str().unwrap();
    let responses = futures::future::join_all((0..10).map(|i| {
        let key = format!("race-{i}");
        let h = &h;
        async move {
            let response = h.refund(id, json!({"amount": 1000}), Some(&key)).await;
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    }))
    .await;
    let succeeded = responses.iter().filter(|(s, _)| *s == 201).count();
    let refused: Vec<&Value> = responses
        .iter()
        .filter(|(s, _)| *s != 201)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(succeeded, 4, "{responses:?}");
    for body in &refused {
        assert_eq!(body["status"], 422, "{body}");
        assert_eq!(body["code"], "refund_exceeds_remaining", "{body}");
    }
    let row = h.payment_row(id).await;
    assert_eq!(row.amount_refunded, 4000);
    assert_eq!(row.status, "partially_refunded");
    assert_eq!(h.provider_refunded(id).await, 4000);
    let refunded_events = h
        .app
        .events_of(id)
        .await
        .into_iter()
        .filter(|e| e == "payment.refunded")
        .count();
    assert_eq!(refunded_events, 4);
}

async fn a_refund_key_refunds_once(kind: Kind, backend: Backend) {
    let h = Harness::spawn(kind, backend).await;
    let (_, payment) = h.paid("alice").await;
    let id = payment["id"].as_str().unwrap();
    let first = h.refund(id, json!({"amount": 500}), Some("same")).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = h.refund(id, json!({"amount": 500}), Some("same")).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    let other_body = h.refund(id, json!({"amount": 501}), Some("same")).await;
    assert_eq!(other_body.status(), 422);
    assert_eq!(h.provider_refunded(id).await, 500);
    assert_eq!(h.payment_row(id).await.amount_refunded, 500);
    let ids: HashSet<String> = h
        .app
        .get(
            &format!("/api/v1/payments/{id}/refunds"),
            &h.app.admin_token(),
        )
        .await
        .json::<Value>()
        .await
        .unwrap()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1);
}
