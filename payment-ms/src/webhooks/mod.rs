//! Webhooks to partners. Every event is fanned out ([`fan_out`], an output of the outbox), in
//! the transaction that records it, into one delivery per active partner whose filter matches; the [`dispatcher`] sends deliveries
//! after the commit, signs them (Standard Webhooks), retries them on a schedule, and records
//! every attempt. Nothing is sent from a request, so nothing is lost with one.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::events::entities::events;
use crate::platform::Core;
use crate::platform::metrics::Gauges;

pub mod deliveries;
pub mod dispatcher;
pub mod entities;
pub mod fan_out;
pub mod partners;
pub mod routes;
pub mod ssrf;

pub use shared::api::EVENT_TYPES;

/// A filter is `*`, a family such as `order.*`, or an exact type.
pub fn is_valid_filter(filter: &str) -> bool {
    shared::api::event_filters().iter().any(|f| f == filter)
}

pub fn filter_matches(filter: &str, event_type: &str) -> bool {
    filter == "*"
        || filter == event_type
        || filter
            .strip_suffix(".*")
            .is_some_and(|family| event_type.split_once('.').is_some_and(|(f, _)| f == family))
}

pub fn partner_wants(partner: &entities::partners::Model, event_type: &str) -> bool {
    partner.event_types.as_array().is_some_and(|filters| {
        filters
            .iter()
            .filter_map(|f| f.as_str())
            .any(|f| filter_matches(f, event_type))
    })
}

pub mod status {
    pub const PENDING: &str = "pending";
    pub const SUCCEEDED: &str = "succeeded";
    pub const FAILED: &str = "failed";
    pub const CANCELED: &str = "canceled";
    pub const ALL: &[&str] = &shared::api::DELIVERY_STATUSES;
}

/// `webhook_deliveries_pending`, and `webhook_queue_depth`: those due now.
pub struct QueueGauges(pub Core);

#[async_trait::async_trait]
impl Gauges for QueueGauges {
    async fn refresh(&self) -> Result<(), sea_orm::DbErr> {
        let (pending, due) = dispatcher::queue::depth(&self.0.db, self.0.now()).await?;
        metrics::gauge!("webhook_deliveries_pending").set(pending as f64);
        metrics::gauge!("webhook_queue_depth").set(due as f64);
        Ok(())
    }
}

/// The body partners receive: `{id, type, created_at, data}`. The same bytes on every attempt.
#[derive(Serialize)]
pub struct WebhookBody<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub created_at: DateTime<Utc>,
    pub data: &'a serde_json::Value,
}

pub fn body_of(event: &events::Model) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&WebhookBody {
        id: &event.id,
        event_type: &event.event_type,
        created_at: event.created_at,
        data: &event.data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_exact_types_families_and_everything() {
        assert!(filter_matches("*", "payment.succeeded"));
        assert!(filter_matches("order.*", "order.paid"));
        assert!(!filter_matches("order.*", "payment.succeeded"));
        assert!(filter_matches("payment.failed", "payment.failed"));
        assert!(!filter_matches("payment.failed", "payment.failed.extra"));
        assert!(!filter_matches("order.", "order.paid"));
    }

    #[test]
    fn the_statuses_are_the_documented_ones() {
        assert_eq!(
            status::ALL,
            [
                status::PENDING,
                status::SUCCEEDED,
                status::FAILED,
                status::CANCELED
            ]
        );
    }

    #[test]
    fn only_known_filters_are_valid() {
        for ok in ["*", "order.*", "payment.*", "partner.*", "order.paid"] {
            assert!(is_valid_filter(ok), "{ok}");
        }
        for bad in ["", "orders.*", "order.shipped", "*.paid", "order"] {
            assert!(!is_valid_filter(bad), "{bad}");
        }
    }
}
