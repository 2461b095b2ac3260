//! Orders: created by a trusted backend (role `service` or `admin`) for a user, with items whose
//! totals are computed here in integer minor units; paid by their owner through a checkout;
//! ended by a cancel, the expiry sweep, or a refund in full.
//!
//! Publishes `order.created`, `order.paid`, `order.canceled`, `order.expired`,
//! `order.refunded`; reacts to `payment.succeeded` and `payment.refunded`.

pub mod entities;
pub mod model;
pub mod reactions;
pub mod routes;
pub mod service;
pub mod store;
