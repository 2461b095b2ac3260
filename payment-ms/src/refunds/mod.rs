//! Refunds: giving back part or all of a succeeded payment, at most what was paid, exactly once
//! at the provider; and reconciling with refunds made at the provider.
//!
//! Publishes `payment.refunded` (the orders react to a refund in full).

pub mod entities;
pub mod model;
pub mod reconcile;
pub mod routes;
pub mod service;
pub mod store;
