//! Events from other services: one pipeline behind two doors (a durable JetStream consumer per
//! source stream, and `POST /api/v1/events`), an inbox that makes a redelivered event change
//! nothing, the handlers, and the dead letters an admin lists and replays.

pub mod consumer;
pub mod entities;
pub mod envelope;
pub mod handlers;
pub mod routes;
pub mod service;
pub mod store;

use async_trait::async_trait;
use sea_orm::{DatabaseConnection, DbErr};

use crate::platform::metrics::Gauges;

/// The dead letters waiting for an admin, read when `/metrics` is scraped.
pub struct InboxGauges(pub DatabaseConnection);

#[async_trait]
impl Gauges for InboxGauges {
    async fn refresh(&self) -> Result<(), DbErr> {
        let dead = store::count_dead(&self.0).await?;
        metrics::gauge!("inbox_dead_letters_pending").set(dead as f64);
        Ok(())
    }
}
