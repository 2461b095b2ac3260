//! Orders: created by a trusted backend (role `service` or `admin`) for a user, or by a buyer
//! for themself from SKUs priced by the catalogue, with totals computed here in integer minor
//! units; paid by their owner through a checkout; ended by a cancel, the expiry sweep, or a
//! refund in full.
//!
//! Publishes `order.created`, `order.paid`, `order.canceled`, `order.expired`,
//! `order.refunded`; reacts to `payment.succeeded` and `payment.refunded`.

pub mod entities;
pub mod model;
pub mod pricing;
pub mod reactions;
pub mod routes;
pub mod service;
pub mod store;
