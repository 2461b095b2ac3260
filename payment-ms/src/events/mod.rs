//! Events: what happened, recorded in the outbox with the change that caused it, from one
//! typed catalogue; fed to the outputs (partner webhooks; with NATS, the bus's publications)
//! and to the other contexts' reactions.

pub mod catalogue;
pub mod entities;
pub mod outbox;
pub mod relay;

pub use catalogue::{Event, EventType, InvoiceChange, OrderChange, SubscriptionChange};
pub use outbox::Outbox;
pub use relay::{Output, Reaction, Recorded};
