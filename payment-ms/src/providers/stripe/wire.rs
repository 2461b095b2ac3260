//! Stripe's objects, as far as we read them. Every field we do not need is ignored, and every
//! field is optional where Stripe's versions or fakes differ.

use std::collections::HashMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

impl<T: HasId> Expandable<T> {
    pub(super) fn id(&self) -> &str {
        match self {
            Expandable::Id(id) => id,
            Expandable::Object(object) => object.id(),
        }
    }
}

pub(super) trait HasId {
    fn id(&self) -> &str;
}

#[derive(Debug, Deserialize)]
pub(super) struct Session {
    pub(super) id: String,
    pub(super) url: Option<String>,
    pub(super) status: Option<String>,
    pub(super) payment_status: Option<String>,
    pub(super) amount_total: Option<i64>,
    pub(super) currency: Option<String>,
    pub(super) payment_intent: Option<Expandable<PaymentIntent>>,
    pub(super) client_reference_id: Option<String>,
    #[serde(default)]
    pub(super) metadata: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct PaymentIntent {
    pub(super) id: String,
    pub(super) status: String,
    pub(super) amount: Option<i64>,
    pub(super) currency: Option<String>,
    pub(super) last_payment_error: Option<ErrorBody>,
    pub(super) next_action: Option<serde_json::Value>,
    pub(super) client_secret: Option<String>,
    #[serde(default)]
    pub(super) metadata: HashMap<String, String>,
}

impl HasId for PaymentIntent {
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Refund {
    pub(super) id: String,
    pub(super) amount: i64,
    pub(super) status: Option<String>,
    pub(super) failure_reason: Option<String>,
    #[serde(default)]
    pub(super) metadata: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Charge {
    pub(super) payment_intent: Option<String>,
    #[serde(default)]
    pub(super) metadata: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct List<T> {
    pub(super) data: Vec<T>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) code: Option<String>,
    pub(super) decline_code: Option<String>,
    pub(super) message: Option<String>,
    pub(super) payment_intent: Option<Box<PaymentIntent>>,
}

impl ErrorBody {
    pub(super) fn code(&self) -> String {
        self.decline_code
            .clone()
            .or_else(|| self.code.clone())
            .or_else(|| self.kind.clone())
            .unwrap_or_else(|| "stripe_error".to_owned())
    }

    pub(super) fn describe(&self) -> String {
        let code = self.code();
        match &self.message {
            Some(message) => format!("{code}: {message}"),
            None => code,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ErrorEnvelope {
    pub(super) error: ErrorBody,
}

#[derive(Debug, Deserialize)]
pub(super) struct Event {
    pub(super) id: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) data: EventData,
}

#[derive(Debug, Deserialize)]
pub(super) struct EventData {
    pub(super) object: serde_json::Value,
}
