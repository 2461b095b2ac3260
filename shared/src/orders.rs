//! Orders in the public API: creation, the order and its lines, edits while pending, the moves
//! of its lifecycle and its history (docs/orders.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::rules;

/// Every order status.
pub const ORDER_STATUSES: [&str; 12] = [
    "pending",
    "awaiting_payment",
    "payment_failed",
    "paid",
    "processing",
    "shipped",
    "delivered",
    "completed",
    "canceled",
    "expired",
    "refunded",
    "requires_action",
];

/// The statuses an order may be moved to through `POST /orders/{id}/transition`.
pub const TRANSITION_TARGETS: [&str; 6] = [
    "processing",
    "shipped",
    "delivered",
    "completed",
    "requires_action",
    "canceled",
];

/// Creates an order. A trusted backend (role `service` or `admin`) creates one for any user,
/// with explicit lines or lines priced from the catalogue, a discount, shipping and tax rates;
/// a buyer creates their own, from SKUs and quantities only, priced (and taxed) from the
/// catalogue. The totals are computed here: `subtotal − discount + shipping + tax = amount`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderIn {
    /// The order's owner: the `sub` of the user who will pay it. Required of a service or
    /// admin; a buyer may leave it out (it is then themself).
    #[serde(default)]
    #[schema(schema_with = rules::text_255_or_null, example = "user_demo")]
    pub user_id: Option<String>,
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<OrderItemIn>,
    /// ISO 4217, any case.
    #[schema(schema_with = rules::currency)]
    pub currency: String,
    /// Your reference, e.g. a reservation id.
    #[serde(default)]
    #[schema(schema_with = rules::text_255_or_null, example = "reservation-42")]
    pub reference: Option<String>,
    /// Your data, returned as given; a JSON object of at most 8 KiB.
    #[serde(default)]
    #[schema(schema_with = rules::metadata_or_null)]
    pub metadata: Option<serde_json::Value>,
    /// An amount off the order, in minor units, split across the lines in proportion to
    /// their amounts (service and admin only). At most the subtotal.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 99_999_999_999_i64, example = 500)]
    pub discount: Option<i64>,
    /// Shipping, in minor units, added as given (service and admin only).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 99_999_999_999_i64, example = 490)]
    pub shipping: Option<i64>,
    /// Where to ship: copied onto the order as it is now.
    #[serde(default)]
    pub shipping_address: Option<Address>,
    /// Who pays: copied onto the order as it is now.
    #[serde(default)]
    pub billing_address: Option<Address>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItemIn {
    #[schema(schema_with = rules::text_255, example = "tee")]
    pub sku: String,
    /// With `unit_price`, an explicit line (service and admin only). Leave both out to take
    /// the catalogue's name and price for the SKU.
    #[serde(default)]
    #[schema(schema_with = rules::text_255_or_null, example = "T-shirt")]
    pub name: Option<String>,
    #[schema(minimum = 1, maximum = 1_000_000, example = 2)]
    pub quantity: i64,
    /// Minor units of the order's currency (`1999` is 19.99 USD). With `name` (service and
    /// admin only); left out, the catalogue's price in the order's currency.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 99_999_999_999_i64, example = 1999)]
    pub unit_price: Option<i64>,
    /// The line's tax rate in basis points (`2000` is 20 %; service and admin only); left
    /// out, the catalogue's rate for a catalogue line, else 0.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 10_000, example = 2000)]
    pub tax_rate_bps: Option<i64>,
}

/// A postal address, as the buyer gave it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[schema(schema_with = rules::text_255, example = "Ada Lovelace")]
    pub name: String,
    #[schema(schema_with = rules::text_255, example = "12 St James's Square")]
    pub line1: String,
    #[serde(default)]
    #[schema(schema_with = rules::text_255_or_null)]
    pub line2: Option<String>,
    #[schema(schema_with = rules::text_255, example = "London")]
    pub city: String,
    #[serde(default)]
    #[schema(schema_with = rules::text_255_or_null, example = "SW1Y 4JH")]
    pub postal_code: Option<String>,
    /// A state, province or county, where the country has them.
    #[serde(default)]
    #[schema(schema_with = rules::text_255_or_null)]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2, any case (stored upper case).
    #[schema(schema_with = rules::country, example = "GB")]
    pub country: String,
    #[serde(default)]
    #[schema(schema_with = rules::text_255_or_null, example = "+44 20 7946 0000")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct OrderOut {
    #[schema(example = "ord_019a8e0c2d4b7a1c9e3f5a7b9c1d3e5f")]
    pub id: String,
    /// A number to read out (`ORD-2027-000042`): gapless and unique per year, given at
    /// creation; `null` on orders made before numbers were.
    #[schema(example = "ORD-2027-000042")]
    pub number: Option<String>,
    pub user_id: String,
    /// One of `pending`, `awaiting_payment`, `payment_failed`, `paid`, `processing`,
    /// `shipped`, `delivered`, `completed`, `canceled`, `expired`, `refunded`,
    /// `requires_action` (docs/orders.md has the lifecycle).
    #[schema(example = "pending")]
    pub status: String,
    /// The reason given for the latest move (a cancel, `requires_action`), if any.
    pub status_reason: Option<String>,
    /// What to pay: `subtotal − discount + shipping + tax`, in minor units of `currency`.
    #[schema(example = 4848)]
    pub amount: i64,
    /// The lines' `line_total`s summed.
    #[schema(example = 4848)]
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    /// The lines' taxes summed.
    pub tax: i64,
    #[schema(example = "usd")]
    pub currency: String,
    pub reference: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub items: Vec<OrderItemOut>,
    pub shipping_address: Option<Address>,
    pub billing_address: Option<Address>,
    /// Once shipped.
    pub carrier: Option<String>,
    /// Once shipped.
    pub tracking_number: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// An order not paid by then expires.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct OrderItemOut {
    /// The line's id, to change or remove it while the order is pending.
    #[schema(example = "oli_019a8e0c2d4b7a1c9e3f5a7b9c1d3e5f")]
    pub id: String,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    /// `quantity × unit_price`.
    pub line_total: i64,
    /// Its share of the order's discount.
    pub discount: i64,
    pub tax_rate_bps: i64,
    /// `tax_rate_bps` of `line_total − discount`, rounded half to even.
    pub tax: i64,
    /// `line_total − discount + tax`.
    pub total: i64,
}

/// Changes a pending order: its addresses (the owner too), its discount and shipping (service
/// and admin). Fields left out stay as they are; the totals are computed again.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrderIn {
    #[serde(default)]
    pub shipping_address: Option<Address>,
    #[serde(default)]
    pub billing_address: Option<Address>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 99_999_999_999_i64)]
    pub discount: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 99_999_999_999_i64)]
    pub shipping: Option<i64>,
}

/// Changes a pending order's line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrderItemIn {
    #[schema(minimum = 1, maximum = 1_000_000, example = 3)]
    pub quantity: i64,
}

/// Why an order is canceled (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelOrderIn {
    #[serde(default)]
    #[schema(schema_with = rules::text_500_or_null, example = "ordered the wrong size")]
    pub reason: Option<String>,
}

/// Moves an order on (service and admin): fulfillment, a step that needs a person, a cancel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderTransitionIn {
    /// `processing`, `shipped` (with `carrier` and `tracking_number`), `delivered`,
    /// `completed`, `requires_action` (with a `reason`) or `canceled`.
    #[schema(schema_with = transition_target, example = "shipped")]
    pub status: String,
    #[serde(default)]
    #[schema(schema_with = rules::text_500_or_null)]
    pub reason: Option<String>,
    #[serde(default)]
    #[schema(schema_with = rules::text_255_or_null, example = "UPS")]
    pub carrier: Option<String>,
    #[serde(default)]
    #[schema(schema_with = rules::text_255_or_null, example = "1Z999AA10123456784")]
    pub tracking_number: Option<String>,
}

fn transition_target() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(TRANSITION_TARGETS))
        .into()
}

/// One move of an order, as its history keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct OrderHistoryOut {
    /// `null` for the creation.
    pub from: Option<String>,
    pub to: String,
    /// `system`, or who with which role: `user:alice`, `service:shop`, `admin:bob`.
    #[schema(example = "service:shop")]
    pub actor: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}
