//! Provider webhooks: what a payment provider tells us. Each event is verified by its
//! provider, recorded once by id (`provider_events`), and taken as a trigger: the payment it
//! names is refreshed from the provider (through payments), or its refunds reconciled (through
//! refunds). A context of its own because it drives both: in `providers/` it would make the
//! providers depend on the payments that depend on them.
//!
//! Publishes nothing itself (payments and refunds record what changed).

pub mod entities;
pub mod routes;
pub mod service;
