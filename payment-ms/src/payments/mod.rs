//! Payments: one attempt to pay through a provider's checkout, and its settlement.

pub mod entities;
pub mod routes;
pub mod service;
