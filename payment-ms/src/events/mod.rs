//! Events: what happened, recorded in the outbox with the change that caused it.

pub mod entities;
pub mod outbox;
