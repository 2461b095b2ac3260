//! End-to-end tests: a real payment-ms and gateway per test, driven over HTTP as a frontend and
//! an app backend would, on SQLite and (with TEST_DATABASE_URL) PostgreSQL.

mod auth;
mod errors;
mod flow;
mod helpers;
mod idempotency;
mod keys;
mod lists;
mod money;
mod openapi;
mod operations;
mod receiver;
mod webhooks;
