//! What the integration tests of gateway and payment-ms share: a whole stack per test
//! ([`helpers::TestApp`], on SQLite and PostgreSQL through [`db_tests!`]) and a partner's
//! endpoint that records every request ([`receiver::Receiver`]). Not part of a deployment.

pub mod billing;
pub mod helpers;
pub mod inventory;
pub mod nats;
pub mod receiver;
