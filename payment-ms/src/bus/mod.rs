//! The event bus: the outbox's output to NATS JetStream. Each event recorded gets a publication
//! row in its transaction (`publications.rs`, the output); the relay (`relay.rs`) publishes them
//! as CloudEvents (`cloudevent.rs`) and records each outcome. Events from other services come
//! in through the inbox context.

pub mod cloudevent;
pub mod entities;
pub mod publications;
pub mod relay;
