//! Inventory: the stock on hand of each tracked SKU, and what checkouts hold of it.
//!
//! A checkout holds every tracked line of its order or none ([`InventoryClient::reserve`]),
//! for as long as the checkout lasts; available = on hand − the active, unexpired holds,
//! computed when asked, never a counter that drifts. Paying the order commits its holds (on hand
//! goes down) in the payment's transaction; a checkout that ends unpaid, and an order canceled
//! or expired, release them (`reactions`). The stock rows are locked in SKU order, and never
//! across a call to a provider.
//!
//! Reacts to `order.paid`, `order.canceled`, `order.expired`, `payment.failed`,
//! `payment.canceled` and `payment.expired`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shared::FieldError;

use crate::platform::Fault;

pub mod builtin;
pub mod entities;
pub mod reactions;
pub mod routes;
pub mod stock;

/// How many units of a SKU an order's lines want.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub sku: String,
    pub quantity: i64,
}

/// A SKU a checkout could not hold enough of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Short {
    pub sku: String,
    pub wanted: i64,
    pub available: i64,
}

/// What a checkout asks to hold.
pub struct Hold<'a> {
    pub order_id: &'a str,
    pub payment_id: &'a str,
    pub lines: &'a [Want],
    pub expires_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// Not enough of these SKUs is available: nothing was held.
    #[error("out of stock: {}", describe(.0))]
    OutOfStock(Vec<Short>),
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error("{0}")]
    Forbidden(String),
    /// The external inventory service did not answer: retry later.
    #[error("the inventory service is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<sea_orm::DbErr> for InventoryError {
    fn from(e: sea_orm::DbErr) -> Self {
        InventoryError::Fault(e.into())
    }
}

/// `tee-m: 2 wanted, 1 available; cap: 1 wanted, 0 available`.
pub fn describe(shorts: &[Short]) -> String {
    shorts
        .iter()
        .map(|s| {
            format!(
                "{}: {} wanted, {} available",
                s.sku,
                s.wanted,
                s.available.max(0)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where checkouts hold stock: the built-in tables ([`builtin::BuiltIn`]), or an external
/// inventory service driven by a saga (the `saga` context).
#[async_trait]
pub trait InventoryClient: Send + Sync {
    /// Holds every tracked line for the payment until `expires_at`, or nothing
    /// ([`InventoryError::OutOfStock`] names each SKU short). The order's earlier holds are
    /// replaced. Answers whether anything is held (false: none of its SKUs is tracked).
    async fn reserve(&self, hold: Hold<'_>) -> Result<bool, InventoryError>;

    /// Gives back what a payment held (its checkout ended unpaid). Safe to call twice.
    async fn release(&self, payment_id: &str, at: DateTime<Utc>) -> Result<(), InventoryError>;
}

/// The lines of an order as wants: one per SKU, quantities added up.
pub fn wants<'a>(lines: impl IntoIterator<Item = (&'a str, i64)>) -> Vec<Want> {
    let mut out: Vec<Want> = Vec::new();
    for (sku, quantity) in lines {
        match out.iter_mut().find(|w| w.sku == sku) {
            Some(want) => want.quantity = want.quantity.saturating_add(quantity),
            None => out.push(Want {
                sku: sku.to_owned(),
                quantity,
            }),
        }
    }
    // The fixed order every lock is taken in.
    out.sort_by(|a, b| a.sku.cmp(&b.sku));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_orders_lines_want_each_sku_once_in_sku_order() {
        let w = wants([("b", 1), ("a", 2), ("b", 3)]);
        assert_eq!(
            w,
            vec![
                Want {
                    sku: "a".into(),
                    quantity: 2
                },
                Want {
                    sku: "b".into(),
                    quantity: 4
                }
            ]
        );
    }

    #[test]
    fn a_shortage_says_what_was_wanted_and_what_there_is() {
        let text = describe(&[
            Short {
                sku: "tee".into(),
                wanted: 2,
                available: 1,
            },
            Short {
                sku: "cap".into(),
                wanted: 1,
                available: -3,
            },
        ]);
        assert_eq!(
            text,
            "tee: 2 wanted, 1 available; cap: 1 wanted, 0 available"
        );
    }
}
