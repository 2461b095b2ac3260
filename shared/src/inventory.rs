//! The inventory API's bodies: the stock of a SKU, and what checkouts hold of it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most units of a SKU on hand (and so in any reservation).
pub const MAX_ON_HAND: i64 = 1_000_000_000;

/// Sets how many units of a SKU are on hand; the SKU is tracked from then on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StockIn {
    /// Units on hand; at least what checkouts hold now.
    #[schema(minimum = 0, maximum = 1_000_000_000, example = 10)]
    pub on_hand: i64,
}

/// A tracked SKU's stock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct StockOut {
    #[schema(example = "tee-black-m")]
    pub sku: String,
    /// Units on hand: what was set, less what paid orders took.
    pub on_hand: i64,
    /// Units held by open checkouts until they expire.
    pub reserved: i64,
    /// `on_hand − reserved`: what a new checkout can hold.
    pub available: i64,
    pub updated_at: DateTime<Utc>,
}
