//! Events: what happened, recorded in the outbox with the change that caused it, from one
//! typed catalogue; fed to the outputs (partner webhooks, and the publications other services
//! read on NATS JetStream) and to the other contexts' reactions.

pub mod catalogue;
pub mod cloudevent;
pub mod entities;
pub mod jetstream;
pub mod outbox;
pub mod publications;
pub mod relay;

pub use catalogue::{Event, EventType};
pub use outbox::Outbox;
pub use relay::{Output, Reaction, Recorded};
