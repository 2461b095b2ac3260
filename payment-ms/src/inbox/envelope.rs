//! An inbound event: a CloudEvents 1.0 structured JSON envelope, `{specversion, id, source,
//! type, time?, subject?, data}`, checked before anything is recorded. `(source, id)` is the
//! inbox key.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use shared::FieldError;

/// The largest envelope accepted from either door.
pub const MAX_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct InboundEvent {
    pub id: String,
    pub source: String,
    pub event_type: String,
    pub time: Option<DateTime<Utc>>,
    /// The flow it belongs to: its `correlationid` extension, or its own id.
    pub correlation: String,
    pub data: Value,
    /// The whole envelope, as stored in the inbox.
    pub envelope: Value,
}

/// Parses and checks an envelope; every problem is named by its field.
pub fn parse(body: &[u8]) -> Result<InboundEvent, Vec<FieldError>> {
    if body.len() > MAX_BYTES {
        return Err(vec![FieldError::new(
            "",
            format!("the event is larger than {MAX_BYTES} bytes"),
        )]);
    }
    let envelope: Value = serde_json::from_slice(body)
        .map_err(|e| vec![FieldError::new("", format!("not a JSON CloudEvent: {e}"))])?;
    let Some(fields) = envelope.as_object() else {
        return Err(vec![FieldError::new("", "must be a JSON object")]);
    };
    let mut errors = Vec::new();
    match fields.get("specversion").and_then(Value::as_str) {
        Some("1.0") => {}
        _ => errors.push(FieldError::new("specversion", "must be \"1.0\"")),
    }
    let id = text(fields, "id", 200, &mut errors);
    let source = text(fields, "source", 200, &mut errors);
    let event_type = text(fields, "type", 100, &mut errors);
    if !event_type.is_empty()
        && !event_type
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
    {
        errors.push(FieldError::new(
            "type",
            "must be lowercase letters, digits, `.`, `_` and `-` (e.g. user.deleted)",
        ));
    }
    let time = match fields.get("time") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => match DateTime::parse_from_rfc3339(t) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                errors.push(FieldError::new("time", "must be an RFC 3339 timestamp"));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new("time", "must be an RFC 3339 timestamp"));
            None
        }
    };
    match fields.get("datacontenttype").and_then(Value::as_str) {
        None | Some("application/json") => {}
        Some(_) => errors.push(FieldError::new(
            "datacontenttype",
            "must be application/json",
        )),
    }
    let data = fields.get("data").cloned().unwrap_or(Value::Null);
    if !data.is_object() {
        errors.push(FieldError::new("data", "must be a JSON object"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let correlation = fields
        .get("correlationid")
        .and_then(Value::as_str)
        .filter(|c| {
            !c.trim().is_empty() && c.chars().count() <= 200 && !c.chars().any(char::is_control)
        })
        .map_or_else(|| id.clone(), str::to_owned);
    Ok(InboundEvent {
        correlation,
        id,
        source,
        event_type,
        time,
        data,
        envelope,
    })
}

/// A required string field of 1 to `max` printable characters.
fn text(
    fields: &Map<String, Value>,
    name: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> String {
    match fields.get(name).and_then(Value::as_str) {
        Some(s)
            if !s.trim().is_empty()
                && s.chars().count() <= max
                && !s.chars().any(char::is_control) =>
        {
            s.to_owned()
        }
        _ => {
            errors.push(FieldError::new(
                name,
                format!("is required: a string of 1 to {max} printable characters"),
            ));
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cloudevent_parses() {
        let event = parse(
            br#"{"specversion":"1.0","id":"e1","source":"users","type":"user.deleted",
                "time":"2026-11-29T10:00:00Z","data":{"user_id":"u1"}}"#,
        )
        .expect("valid");
        assert_eq!(event.id, "e1");
        assert_eq!(event.source, "users");
        assert_eq!(event.event_type, "user.deleted");
        assert_eq!(event.data["user_id"], "u1");
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors =
            parse(br#"{"specversion":"0.3","id":"","type":"User Deleted","time":"x","data":[]}"#)
                .expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["specversion", "id", "source", "type", "time", "data"]
        );
        assert!(parse(b"not json").is_err());
        assert!(parse(b"[1]").is_err());
    }
}
