//! Orders: created by a trusted backend (role `service` or `admin`) for a user, or by a buyer
//! for themself from SKUs priced by the catalogue, with totals (discount, shipping, tax)
//! computed here in integer minor units by one pure function; edited while pending; paid by
//! their owner through a checkout; fulfilled by staff; ended by a cancel, the expiry sweep, or a
//! refund in full. Every move follows one transition table and leaves a history row.
//!
//! Publishes `order.created`, `order.updated`, `order.payment_pending`, `order.payment_failed`,
//! `order.paid`, `order.processing`, `order.fulfilled`, `order.delivered`, `order.completed`,
//! `order.requires_action`, `order.canceled`, `order.expired`, `order.refunded`; reacts to the
//! payments' events.

pub mod edits;
pub mod entities;
pub mod lifecycle;
pub mod model;
pub mod movement;
pub mod moves;
pub mod pricing;
pub mod reactions;
pub mod routes;
pub mod service;
pub mod store;
pub mod totals;
