//! End-to-end tests of payment-ms: a real payment-ms (and the gateway in front, as clients
//! reach it) per test, driven over HTTP as a frontend, an app backend and a partner would, on
//! SQLite and (with TEST_DATABASE_URL) PostgreSQL: orders, checkout, payments, refunds,
//! idempotency, the providers, partner webhooks and the delivery queue.

mod accounts;
mod batch_plans;
mod bill_run;
mod billing;
mod billing_charges;
mod billing_documents;
mod billing_replicas;
mod cancellation;
mod catalogue;
mod checkout_page;
mod contract;
mod fake_stripe;
mod flow;
mod hostile_input;
mod idempotency;
mod inbox;
mod inventory;
mod lists;
mod localstripe;
mod money;
mod nats;
mod order_lifecycle;
mod order_numbers;
mod outage;
mod partner_isolation;
mod partner_rules;
mod queue;
mod revenue;
mod saga;
mod stripe;
mod webhooks;
