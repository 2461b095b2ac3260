//! An order: its statuses, its validation and totals, its public view, and what can go wrong.

use sea_orm::entity::prelude::*;
use shared::FieldError;
use shared::api::{CreateOrderIn, OrderItemOut, OrderOut};
use shared::money::{self, Currency, MAX_AMOUNT};

use super::entities::{order_items, orders};
use crate::platform::{Fault, validate};

crate::platform::typed_id!(
    /// An order's id.
    OrderId,
    shared::ids::ORDER
);

pub const MAX_ITEMS: usize = 100;
pub const MAX_QUANTITY: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::None)",
    rename_all = "snake_case"
)]
pub enum OrderStatus {
    Pending,
    Paid,
    Canceled,
    Expired,
    Refunded,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Canceled => "canceled",
            OrderStatus::Expired => "expired",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub const ALL: [OrderStatus; 5] = [
        Self::Pending,
        Self::Paid,
        Self::Canceled,
        Self::Expired,
        Self::Refunded,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

crate::platform::status_text!(OrderStatus);

/// Why an order use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The actor may not do this (a buyer setting prices, or ordering for someone else).
    #[error("{0}")]
    Forbidden(String),
    /// No such order, or not one the actor may see.
    #[error("order {0} not found")]
    NotFound(String),
    #[error("{0}")]
    NotCancelable(String),
    #[error("{0}")]
    NotPayable(String),
    /// A service it depends on (the account service) did not answer: retry later.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<sea_orm::DbErr> for OrderError {
    fn from(e: sea_orm::DbErr) -> Self {
        OrderError::Fault(e.into())
    }
}

/// The public view of an order and its lines.
pub fn order_out(order: orders::Model, items: Vec<order_items::Model>) -> OrderOut {
    OrderOut {
        id: order.id,
        number: order.number,
        user_id: order.user_id,
        status: order.status.as_str().to_owned(),
        amount: order.total_amount,
        currency: order.currency,
        reference: order.reference,
        metadata: order.metadata,
        items: items
            .into_iter()
            .map(|i| OrderItemOut {
                sku: i.sku,
                name: i.name,
                quantity: i.quantity,
                unit_price: i.unit_price,
                line_total: i.line_total,
            })
            .collect(),
        created_at: order.created_at,
        updated_at: order.updated_at,
        expires_at: order.expires_at,
    }
}

/// Validates the order and computes its lines and total. Every error names its field.
pub fn validate(input: &CreateOrderIn) -> Result<(Currency, Vec<i64>, i64), Vec<FieldError>> {
    let mut errors = Vec::new();
    match &input.user_id {
        Some(user_id) => validate::text(&mut errors, "user_id", user_id, 255),
        None => errors.push(FieldError::new(
            "user_id",
            "must be given: the user who will pay the order",
        )),
    }
    let currency = Currency::accept(&input.currency)
        .map_err(|refusal| errors.push(FieldError::new("currency", refusal)))
        .ok();
    if input.items.is_empty() {
        errors.push(FieldError::new("items", "must have at least one item"));
    } else if input.items.len() > MAX_ITEMS {
        errors.push(FieldError::new(
            "items",
            format!("must have at most {MAX_ITEMS} items"),
        ));
    }
    let mut line_totals = Vec::with_capacity(input.items.len());
    for (i, item) in input.items.iter().enumerate() {
        validate::text(&mut errors, &format!("items[{i}].sku"), &item.sku, 255);
        let (Some(name), Some(unit_price)) = (&item.name, item.unit_price) else {
            errors.push(FieldError::new(
                format!("items[{i}]"),
                "give both name and unit_price, or neither to price it from the catalogue",
            ));
            continue;
        };
        validate::text(&mut errors, &format!("items[{i}].name"), name, 255);
        let mut line_ok = true;
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            errors.push(FieldError::new(
                format!("items[{i}].quantity"),
                format!("must be between 1 and {MAX_QUANTITY}"),
            ));
            line_ok = false;
        }
        if !(0..=MAX_AMOUNT).contains(&unit_price) {
            errors.push(FieldError::new(
                format!("items[{i}].unit_price"),
                format!("must be between 0 and {MAX_AMOUNT} minor units"),
            ));
            line_ok = false;
        }
        if line_ok {
            match money::line_total(item.quantity, unit_price) {
                Some(total) => line_totals.push(total),
                None => errors.push(FieldError::new(
                    format!("items[{i}]"),
                    format!("quantity × unit_price exceeds {MAX_AMOUNT} minor units"),
                )),
            }
        }
    }
    if let Some(reference) = &input.reference {
        validate::text(&mut errors, "reference", reference, 255);
    }
    validate::metadata(&mut errors, &input.metadata);
    let total = if errors.is_empty() {
        match money::sum(line_totals.iter().copied()) {
            Some(0) => {
                errors.push(FieldError::new(
                    "items",
                    "the order total must be greater than 0",
                ));
                0
            }
            Some(total) => total,
            None => {
                errors.push(FieldError::new(
                    "items",
                    format!("the order total exceeds {MAX_AMOUNT} minor units"),
                ));
                0
            }
        }
    } else {
        0
    };
    match (errors.is_empty(), currency) {
        (true, Some(currency)) => Ok((currency, line_totals, total)),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::api::OrderItemIn;

    fn item(quantity: i64, unit_price: i64) -> OrderItemIn {
        OrderItemIn {
            sku: "sku".into(),
            name: Some("Thing".into()),
            quantity,
            unit_price: Some(unit_price),
        }
    }

    fn order(items: Vec<OrderItemIn>) -> CreateOrderIn {
        CreateOrderIn {
            user_id: Some("u1".into()),
            items,
            currency: "usd".into(),
            reference: None,
            metadata: None,
        }
    }

    #[test]
    fn the_statuses_are_the_documented_ones() {
        assert_eq!(
            OrderStatus::ALL.map(OrderStatus::as_str),
            shared::api::ORDER_STATUSES
        );
    }

    #[test]
    fn totals_are_sums_of_integer_lines() {
        let (_, lines, total) = validate(&order(vec![item(3, 1999), item(1, 1)])).unwrap();
        assert_eq!(lines, vec![5997, 1]);
        assert_eq!(total, 5998);
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut input = order(vec![item(0, 10), item(2, -1)]);
        input.currency = "zzz".into();
        let errors = validate(&input).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["currency", "items[0].quantity", "items[1].unit_price"]
        );
    }

    #[test]
    fn overflowing_totals_are_refused() {
        let errors = validate(&order(vec![item(MAX_QUANTITY, MAX_AMOUNT)])).unwrap_err();
        assert_eq!(errors[0].field, "items[0]");
        let errors = validate(&order(vec![item(1, MAX_AMOUNT), item(1, MAX_AMOUNT)])).unwrap_err();
        assert_eq!(errors[0].field, "items");
        let errors = validate(&order(vec![item(5, 0)])).unwrap_err();
        assert_eq!(errors[0].message, "the order total must be greater than 0");
    }
}
