//! The catalogue API's bodies: products by SKU and their prices.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::rules;

/// The most currencies one product is priced in.
pub const MAX_PRICES: usize = 50;

fn prices_in() -> utoipa::openapi::schema::Schema {
    rules::prices(MAX_PRICES)
}

/// A product, created or replaced as a whole under its SKU.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductIn {
    #[schema(schema_with = rules::text_255, example = "T-shirt, black, M")]
    pub name: String,
    /// Unit prices in minor units by currency (`{"usd": 2500, "eur": 2300}`; codes of any
    /// case are taken, one spelling per currency): an order in a currency the product has no
    /// price in cannot include it.
    /// A JSON number each: a whole one (`2500`, or `2500.0`, the same number) is taken.
    #[schema(schema_with = prices_in)]
    pub prices: BTreeMap<String, serde_json::Number>,
    /// Whether it is for sale (default `true`): an inactive product cannot be ordered, and
    /// buyers do not see it.
    #[serde(default)]
    pub active: Option<bool>,
    /// The tax rate of its order lines, in basis points (`2000` is 20 %; default 0).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 10_000, example = 2000)]
    pub tax_rate_bps: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ProductOut {
    #[schema(example = "tee-black-m")]
    pub sku: String,
    pub name: String,
    #[schema(value_type = Object, example = json!({"usd": 2500, "eur": 2300}))]
    pub prices: BTreeMap<String, i64>,
    pub active: bool,
    pub tax_rate_bps: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
