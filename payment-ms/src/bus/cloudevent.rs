//! The CloudEvents 1.0 envelope (structured JSON) an event has on NATS: the same id partners
//! see as `webhook-id`, the subject it is about, its per-subject sequence, and what caused it.

use serde::Serialize;

use crate::events::entities::events;

/// The content type of a structured CloudEvent.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// The version of the data's shape; bumped when a field changes meaning or goes away.
pub const DATA_VERSION: &str = "1";

#[derive(Serialize)]
struct Envelope<'a> {
    specversion: &'static str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    subject: &'a str,
    time: String,
    datacontenttype: &'static str,
    dataversion: &'static str,
    sequence: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    causationid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlationid: Option<&'a str>,
    data: &'a serde_json::Value,
}

/// The event as other services receive it.
pub fn envelope(event: &events::Model, source: &str) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Envelope {
        specversion: "1.0",
        id: &event.id,
        source,
        event_type: &event.event_type,
        subject: &event.subject_id,
        time: event
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        datacontenttype: "application/json",
        dataversion: DATA_VERSION,
        sequence: event.sequence,
        causationid: event.causation_id.as_deref(),
        correlationid: event.correlation_id.as_deref(),
        data: &event.data,
    })
}

/// The subject an event is published on: `<prefix>.<type>`, e.g. `payments.events.order.paid`.
pub fn subject(prefix: &str, event_type: &str) -> String {
    format!("{prefix}.{event_type}")
}
