//! Payments: one attempt to pay an order through a provider's checkout, and what the provider
//! says of it afterwards (verify, cancel, webhooks, the expiry sweep).
//!
//! Publishes `payment.created`, `payment.succeeded`, `payment.failed`, `payment.canceled`,
//! `payment.expired` (refunds publish `payment.refunded`). Reads the order it pays through the
//! orders' service, and closes an order's checkouts for it (`orders::service::Checkouts`).

pub mod charges;
pub mod checkout;
pub mod entities;
pub mod expiry;
pub mod model;
pub mod revenue;
pub mod routes;
pub mod service;
pub mod store;
