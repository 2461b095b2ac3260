//! Orders: created by a trusted backend for a user, paid through a checkout, closed by a
//! cancel, the expiry sweep or a full refund.

pub mod entities;
pub mod routes;
pub mod service;
