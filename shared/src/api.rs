//! The public API's bodies: what payment-ms reads and writes, and what the gateway's OpenAPI
//! document describes. One definition, so the two cannot drift apart.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::rules;

pub use crate::orders::{CreateOrderIn, ORDER_STATUSES, OrderItemIn, OrderItemOut, OrderOut};
/// Every payment status.
pub const PAYMENT_STATUSES: [&str; 7] = [
    "pending",
    "succeeded",
    "failed",
    "canceled",
    "expired",
    "partially_refunded",
    "refunded",
];
/// Every status of a webhook delivery.
pub const DELIVERY_STATUSES: [&str; 4] = ["pending", "succeeded", "failed", "canceled"];

/// Every event type a partner can ask for.
pub const EVENT_TYPES: &[&str] = &[
    "order.created",
    "order.paid",
    "order.canceled",
    "order.expired",
    "order.refunded",
    "order.updated",
    "order.payment_pending",
    "order.payment_failed",
    "order.processing",
    "order.fulfilled",
    "order.delivered",
    "order.completed",
    "order.requires_action",
    "payment.created",
    "payment.succeeded",
    "payment.failed",
    "payment.canceled",
    "payment.expired",
    "payment.refunded",
    "partner.disabled",
    "subscription.created",
    "subscription.updated",
    "subscription.trial_ending",
    "subscription.past_due",
    "subscription.paused",
    "subscription.resumed",
    "subscription.canceled",
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.voided",
    "invoice.marked_uncollectible",
];

/// What a partner's `event_types` may name: `*`, a family (`order.*`), or a type.
pub fn event_filters() -> &'static [String] {
    static FILTERS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    FILTERS.get_or_init(|| {
        let mut filters = vec!["*".to_owned()];
        for t in EVENT_TYPES {
            if let Some((family, _)) = t.split_once('.') {
                let wildcard = format!("{family}.*");
                if !filters.contains(&wildcard) {
                    filters.push(wildcard);
                }
            }
        }
        filters.extend(EVENT_TYPES.iter().map(|t| (*t).to_owned()));
        filters
    })
}

fn event_filter_list() -> utoipa::openapi::schema::ArrayBuilder {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            utoipa::openapi::schema::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .enum_values(Some(event_filters().iter().cloned())),
        )
        .min_items(Some(1))
        .max_items(Some(100))
}

fn event_filters_or_null() -> utoipa::openapi::schema::Schema {
    rules::or_null(event_filter_list())
}

/// Starts paying an order. There is no amount: the payment's amount is the order's.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutIn {
    /// The provider, one configured on this deployment; the configured default when absent.
    #[serde(default)]
    #[schema(schema_with = provider_or_null)]
    pub provider: Option<String>,
    /// Where the provider sends the buyer after paying, with `payment_id` added.
    #[schema(schema_with = rules::url)]
    pub success_url: String,
    /// Where the provider sends the buyer after declining, with `payment_id` added.
    #[schema(schema_with = rules::url)]
    pub cancel_url: String,
    /// A saved payment method at the provider (Stripe: `pm_…`). With one, the payment is
    /// charged at once, server-side, instead of sending the buyer to a hosted page; the answer
    /// is then `succeeded`, `failed`, or `pending` with a `next_action`. Stripe only.
    #[serde(default)]
    #[schema(schema_with = rules::token_or_null, example = "pm_card_visa")]
    pub payment_method: Option<String>,
    #[serde(default)]
    #[schema(schema_with = rules::metadata_or_null)]
    pub metadata: Option<serde_json::Value>,
}

/// The providers this software knows; a deployment configures some of them.
pub const PROVIDERS: [&str; 2] = ["mock", "stripe"];

fn provider_or_null() -> utoipa::openapi::schema::Schema {
    rules::or_null(
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(PROVIDERS)),
    )
}

/// What the buyer must still do for a pending payment (Stripe's `requires_action`), such as
/// authenticating with their bank.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct NextAction {
    /// The provider's action type, e.g. `redirect_to_url` or `use_stripe_sdk`.
    #[serde(rename = "type")]
    #[schema(example = "use_stripe_sdk")]
    pub kind: String,
    /// Where to send the buyer, when the action is a redirect.
    pub redirect_url: Option<String>,
    /// For Stripe.js (`stripe.handleNextAction({clientSecret})`) in the buyer's browser.
    pub client_secret: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct PaymentOut {
    #[schema(example = "pay_019a8e0c4f1a7d2e8b3c5d7e9f1a2b3c")]
    pub id: String,
    pub order_id: String,
    pub user_id: String,
    #[schema(example = "mock")]
    pub provider: String,
    pub provider_reference: Option<String>,
    /// `pending`, `succeeded`, `failed`, `canceled`, `expired`, `partially_refunded` or
    /// `refunded`.
    #[schema(example = "pending")]
    pub status: String,
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: String,
    /// Where to send the buyer to pay.
    pub checkout_url: Option<String>,
    pub success_url: String,
    pub cancel_url: String,
    pub failure_reason: Option<String>,
    /// Set while the buyer must act before the payment can complete.
    pub next_action: Option<NextAction>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Refunds a succeeded payment, in full or in part.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundIn {
    /// In minor units; what remains to refund when absent.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 99_999_999_999_i64, example = 500)]
    pub amount: Option<i64>,
    /// Free text kept with the refund. `duplicate`, `fraudulent` and `requested_by_customer`
    /// are also passed to Stripe as its reason.
    #[serde(default)]
    #[schema(schema_with = rules::text_500_or_null, example = "requested_by_customer")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct RefundOut {
    #[schema(example = "rfd_019a8e0c4f1a7d2e8b3c5d7e9f1a2b3c")]
    pub id: String,
    pub payment_id: String,
    pub order_id: String,
    pub provider: String,
    pub provider_reference: Option<String>,
    pub amount: i64,
    pub currency: String,
    /// `pending` (sent, outcome not known yet), `succeeded` or `failed`.
    #[schema(example = "succeeded")]
    pub status: String,
    pub reason: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One page of a list, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page (the id of this page's last item); `null` on the last.
    pub next_cursor: Option<String>,
}

/// Registers a partner to receive webhooks.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerIn {
    #[schema(schema_with = rules::text_255, example = "Reservations")]
    pub name: String,
    /// An http(s) URL resolving to public addresses.
    #[schema(schema_with = rules::url)]
    pub url: String,
    /// `*` (the default), a family such as `order.*`, or event types.
    #[serde(default)]
    #[schema(schema_with = event_filters_or_null)]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub active: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerPatch {
    #[schema(schema_with = rules::text_255_or_null)]
    pub name: Option<String>,
    #[schema(schema_with = rules::url_or_null)]
    pub url: Option<String>,
    #[schema(schema_with = event_filters_or_null)]
    pub event_types: Option<Vec<String>>,
    /// `true` re-enables a disabled partner.
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct PartnerOut {
    #[schema(example = "ptn_019a8e0c2d4b7a1c9e3f5a7b9c1d3e5f")]
    pub id: String,
    pub name: String,
    pub url: String,
    #[schema(value_type = Vec<String>, example = json!(["order.*"]))]
    pub event_types: serde_json::Value,
    pub active: bool,
    /// Configured by N8N_WEBHOOK_URL, not through the API.
    pub builtin: bool,
    pub disabled_reason: Option<String>,
    /// Events in a row lost past the whole retry schedule; enough disable the partner.
    pub consecutive_failures: i32,
    /// Attempts in a row that got no answer, a 5xx or a 429.
    pub failing_attempts: i32,
    /// While set and in the future, nothing is sent to the partner: its attempts kept failing.
    /// Then one attempt probes it; an answer ends the back-off.
    pub backoff_until: Option<DateTime<Utc>>,
    /// Until then, the secret before the last rotation still signs too.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A partner with its secret: only the answers to creation and rotation carry it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerWithSecret {
    #[serde(flatten)]
    pub partner: PartnerOut,
    /// `whsec_` + base64: verify requests with it; shown only now.
    pub secret: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    /// Seconds the old secret keeps signing: at most 7 days; `WEBHOOK_SECRET_GRACE` (24 h)
    /// by default.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604_800)]
    pub grace_seconds: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct DeliveryOut {
    #[schema(example = "dlv_019a8e0c2d4b7a1c9e3f5a7b9c1d3e5f")]
    pub id: String,
    pub event_id: String,
    /// The event's type, e.g. `payment.succeeded`.
    #[schema(example = "payment.succeeded")]
    pub event_type: String,
    pub partner_id: String,
    /// `pending`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    pub attempts: i32,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Every attempt, when one delivery is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptOut>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct AttemptOut {
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub latency_ms: i32,
    pub status_code: Option<i32>,
    /// The first KiB of the partner's answer.
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendIn {
    #[schema(schema_with = rules::event_id)]
    pub event_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverIn {
    /// Requeue failed or canceled deliveries created at or after this time.
    pub since: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecoverOut {
    pub recovered: u64,
}

/// What an inbound event's handler did: `applied` (it changed something here), `recorded`
/// (kept for a capability that acts on it later), `ignored` (a type this service has no use for).
pub const INBOX_OUTCOMES: [&str; 3] = ["applied", "recorded", "ignored"];

/// A dead letter's statuses: `dead` until a replay is handled, then `replayed`.
pub const DEAD_LETTER_STATUSES: [&str; 2] = ["dead", "replayed"];

/// The inbound event types with a handler (the others are acknowledged and counted).
pub const INBOUND_EVENT_TYPES: &[&str] = &[
    "user.deleted",
    "order.created",
    "wallet.insufficient_funds",
    "wallet.balance_changed",
    "user.upgraded",
    "subscription.usage_exceeded",
];

/// An event from another service: a CloudEvents 1.0 structured JSON envelope. Described
/// here for the API document; payment-ms checks each field itself and names every bad one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CloudEventIn {
    #[schema(example = "1.0", pattern = "^1\\.0$")]
    pub specversion: String,
    /// The sender's event id: with `source`, the key that makes a repeat change nothing.
    #[schema(min_length = 1, max_length = 200, example = "usr-del-42")]
    pub id: String,
    #[schema(min_length = 1, max_length = 200, example = "users-service")]
    pub source: String,
    #[serde(rename = "type")]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[a-z0-9._-]+$",
        example = "user.deleted"
    )]
    pub event_type: String,
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
    /// `application/json` when given.
    #[serde(default)]
    #[schema(example = "application/json")]
    pub datacontenttype: Option<String>,
    /// What the type carries: `user.deleted` `{user_id}`; `order.created` `{order_id, user_id,
    /// currency, items, metadata?}`; `wallet.insufficient_funds` `{user_id}`;
    /// `wallet.balance_changed` `{user_id, currency, balance}`; `user.upgraded` `{user_id,
    /// plan_code}`; `subscription.usage_exceeded` `{subscription_id}`.
    #[schema(value_type = Object, example = json!({"user_id": "u_42"}))]
    pub data: serde_json::Value,
}

/// The answer to `POST /api/v1/events`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct EventAccepted {
    /// The event's id, as sent.
    #[schema(example = "2f6c1e7a-users-42")]
    pub id: String,
    /// True when this event (same `source` and `id`) was received before: nothing changed now.
    pub duplicate: bool,
    /// What its handler did (the first time).
    #[schema(example = "applied")]
    pub outcome: String,
    #[schema(example = "canceled 1 order and 1 payment")]
    pub detail: String,
}

/// An inbound event as the inbox keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct InboxEntryOut {
    #[schema(example = "inb_019a8e0c2d4b7a1c9e3f5a7b9c1d3e5f")]
    pub id: String,
    pub source: String,
    /// The sender's event id.
    pub message_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// `nats` or `http`.
    pub door: String,
    pub outcome: String,
    pub detail: String,
    /// The CloudEvent as it arrived.
    #[schema(value_type = Object)]
    pub envelope: serde_json::Value,
    pub received_at: DateTime<Utc>,
}

/// An inbound event that could not be handled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct DeadLetterOut {
    #[schema(example = "dlq_019a8e0c2d4b7a1c9e3f5a7b9c1d3e5f")]
    pub id: String,
    pub source: Option<String>,
    pub message_id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// `nats` or `http` (a replay that failed again).
    pub door: String,
    pub nats_subject: Option<String>,
    /// The message as it arrived.
    pub body: String,
    /// Why the last attempt failed.
    pub error: String,
    /// Deliveries and replays so far.
    pub deliveries: i32,
    /// `dead`, or `replayed` once a replay was handled.
    #[schema(example = "dead")]
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
