//! Against a real peer: `localstripe`, a stateful fake Stripe server (started by
//! `scripts/test` and `.ci/run`, which set `LOCALSTRIPE_URL`). It has PaymentIntents, refunds and
//! signed webhooks, but no Checkout Sessions, so the `payment_intents` mode is what runs here.

use std::time::Duration;

use payment_ms::inbound::entities::provider_events;
use payment_ms::providers::stripe::Mode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::contract::{checkout_with_method, spawn_stripe, stripe_config};
use testkit::helpers::{Backend, TestApp, problem};

const KEY: &str = "sk_test_localstripe";
const WEBHOOK_SECRET: &str = "whsec_localstripe_endpoint";

/// As `db_tests!`, and reported as ignored (never as passed) when built without localstripe.
macro_rules! localstripe_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(localstripe_tests), ignore = "needs localstripe: run the tests with scripts/test, which starts it")]
                async fn $name() {
                    super::$name(testkit::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(all(postgres_tests, localstripe_tests)), ignore = "needs PostgreSQL and localstripe: run the tests with scripts/test")]
                async fn $name() {
                    super::$name(testkit::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

localstripe_tests!(
    saved_cards_pay_decline_and_refund,
    a_signed_webhook_settles_a_payment_without_verify,
);

/// Where localstripe listens; the tests were built for it, so it must be running.
fn localstripe() -> String {
    std::env::var("LOCALSTRIPE_URL").expect(
        "built with LOCALSTRIPE_TESTS=1, so LOCALSTRIPE_URL must name a running localstripe",
    )
}

async fn spawn(backend: Backend, base: &str) -> TestApp {
    let mut config = stripe_config(base, Mode::PaymentIntents);
    config.secret_key = SecretString::from(KEY);
    config.webhook_secret = Some(SecretString::from(WEBHOOK_SECRET));
    spawn_stripe(backend, config).await
}

async fn checkout(app: &TestApp, method: &str) -> Value {
    let response = checkout_with_method(app, "alice", method).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn saved_cards_pay_decline_and_refund(backend: Backend) {
    let base = localstripe();
    let app = spawn(backend, &base).await;
    let paid = checkout(&app, "pm_card_visa").await;
    assert_eq!(paid["status"], "succeeded", "{paid}");
    let id = paid["id"].as_str().unwrap();
    let intent = paid["provider_reference"].as_str().unwrap().to_owned();
    assert!(intent.starts_with("pi_"));

    let declined = checkout(&app, "pm_card_chargeCustomerFail").await;
    assert_eq!(declined["status"], "failed", "{declined}");
    assert!(
        declined["failure_reason"]
            .as_str()
            .unwrap()
            .contains("card_declined"),
        "{declined}"
    );

    let refund = |amount: Option<i64>| {
        let app = &app;
        async move {
            let body = match amount {
                Some(a) => json!({"amount": a, "reason": "customer changed their mind"}),
                None => json!({}),
            };
            app.post(
                &format!("/api/v1/payments/{id}/refunds"),
                &app.admin_token(),
                &body,
                None,
            )
            .await
        }
    };
    let part = refund(Some(1000)).await;
    assert_eq!(part.status(), 201);
    let part: Value = part.json().await.unwrap();
    assert_eq!(part["status"], "succeeded");
    assert!(
        part["provider_reference"]
            .as_str()
            .unwrap()
            .starts_with("re_")
    );
    let rest = refund(None).await;
    assert_eq!(rest.status(), 201);
    assert_eq!(rest.json::<Value>().await.unwrap()["amount"], 3848);
    let payment: Value = app
        .get(&format!("/api/v1/payments/{id}"), &app.admin_token())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payment["status"], "refunded");
    assert_eq!(payment["amount_refunded"], 4848);
    let more = refund(Some(1)).await;
    assert_eq!(more.status(), 409);
    assert_eq!(problem(more).await["code"], "payment_not_refundable");

    // localstripe holds the same two refunds.
    let held: Value = app
        .client
        .get(format!("{base}/v1/refunds"))
        .query(&[("payment_intent", intent.as_str())])
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut amounts: Vec<i64> = held["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount"].as_i64().unwrap())
        .collect();
    amounts.sort_unstable();
    assert_eq!(amounts, [1000, 3848]);
    assert_eq!(
        app.events_of(id).await,
        [
            "payment.created",
            "payment.succeeded",
            "payment.refunded",
            "payment.refunded"
        ]
    );
}

async fn a_signed_webhook_settles_a_payment_without_verify(backend: Backend) {
    let base = localstripe();
    let app = spawn(backend, &base).await;
    let http = reqwest::Client::new();
    // localstripe signs its events for this endpoint (through the gateway, as in production).
    let hook = format!("test_{}", uuid::Uuid::new_v4().simple());
    let registered = http
        .post(format!("{base}/_config/webhooks/{hook}"))
        .form(&[
            ("url", app.url("/providers/stripe/webhook").as_str()),
            ("secret", WEBHOOK_SECRET),
            ("events[0]", "payment_intent.succeeded"),
        ])
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success(), "{registered:?}");

    // A card that needs 3-D Secure: the payment waits for the buyer.
    let method: Value = http
        .post(format!("{base}/v1/payment_methods"))
        .bearer_auth(KEY)
        .form(&[
            ("type", "card"),
            ("card[number]", "4000002500003155"),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2030"),
            ("card[cvc]", "123"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let payment = checkout(&app, method["id"].as_str().unwrap()).await;
    assert_eq!(payment["status"], "pending", "{payment}");
    let client_secret = payment["next_action"]["client_secret"].as_str().unwrap();
    let intent = payment["provider_reference"].as_str().unwrap();
    let id = payment["id"].as_str().unwrap();

    // The buyer authenticates in their browser (Stripe.js) and never comes back to the shop.
    let authenticated = http
        .post(format!("{base}/v1/payment_intents/{intent}/_authenticate"))
        .form(&[
            ("client_secret", client_secret),
            ("success", "true"),
            ("key", "pk_test_localstripe"),
        ])
        .send()
        .await
        .unwrap();
    assert!(authenticated.status().is_success(), "{authenticated:?}");

    // localstripe's signed `payment_intent.succeeded` arrives about a second later.
    let mut status = String::new();
    for _ in 0..100 {
        let current: Value = app
            .get(&format!("/api/v1/payments/{id}"), &app.token("alice", &[]))
            .await
            .json()
            .await
            .unwrap();
        status = current["status"].as_str().unwrap_or_default().to_owned();
        if status == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, "succeeded",
        "the webhook did not settle the payment"
    );
    assert_eq!(
        app.events_of(id).await,
        ["payment.created", "payment.succeeded"]
    );
    let handled = provider_events::Entity::find()
        .filter(provider_events::Column::EventType.eq("payment_intent.succeeded"))
        .all(&app.db)
        .await
        .unwrap();
    assert!(!handled.is_empty());
}
