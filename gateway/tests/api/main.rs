//! End-to-end tests: a real payment-ms and gateway per test, driven over HTTP as a frontend and
//! an app backend would, on SQLite and (with TEST_DATABASE_URL) PostgreSQL.

mod auth;
mod cancellation;
mod checkout_page;
mod conformance;
mod connections;
mod contract;
mod errors;
mod fake_stripe;
mod flow;
mod helpers;
mod hostile_input;
mod idempotency;
mod keys;
mod lists;
mod localstripe;
mod money;
mod openapi;
mod operations;
mod outage;
mod partner_isolation;
mod partner_rules;
mod queue;
mod receiver;
mod stripe;
mod webhooks;
