//! Refunds: giving back part or all of a succeeded payment.

pub mod entities;
pub mod service;
