//! An order: its statuses, its validation and totals, its public view, and what can go wrong.

use shared::FieldError;
use shared::api::{CreateOrderIn, OrderItemIn, OrderItemOut, OrderOut};
use shared::money::{Currency, MAX_AMOUNT};
use shared::orders::Address;

use super::entities::{order_items, orders};
use super::totals::{self, LineIn, MAX_TAX_RATE_BPS, Totals, TotalsError};
use crate::platform::{Fault, validate};

crate::platform::typed_id!(
    /// An order's id.
    OrderId,
    shared::ids::ORDER
);

pub const MAX_ITEMS: usize = 100;
pub const MAX_QUANTITY: i64 = 1_000_000;

pub use super::lifecycle::OrderStatus;

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
    /// The transition table has no such move from where the order is.
    #[error("{0}")]
    NotMovable(String),
    /// Only a pending order's lines, discount, shipping and addresses change.
    #[error("{0}")]
    NotEditable(String),
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
    let address =
        |json: Option<serde_json::Value>| json.and_then(|v| serde_json::from_value(v).ok());
    OrderOut {
        id: order.id,
        number: order.number,
        user_id: order.user_id,
        status: order.status.as_str().to_owned(),
        status_reason: order.status_reason,
        amount: order.total_amount,
        subtotal: order.subtotal_amount,
        discount: order.discount_amount,
        shipping: order.shipping_amount,
        tax: order.tax_amount,
        currency: order.currency,
        reference: order.reference,
        metadata: order.metadata,
        items: items
            .into_iter()
            .map(|i| OrderItemOut {
                id: i.id,
                sku: i.sku,
                name: i.name,
                quantity: i.quantity,
                unit_price: i.unit_price,
                line_total: i.line_total,
                discount: i.discount_amount,
                tax_rate_bps: i64::from(i.tax_rate_bps),
                tax: i.tax_amount,
                total: i.line_total - i.discount_amount + i.tax_amount,
            })
            .collect(),
        shipping_address: address(order.shipping_address),
        billing_address: address(order.billing_address),
        carrier: order.carrier,
        tracking_number: order.tracking_number,
        created_at: order.created_at,
        updated_at: order.updated_at,
        expires_at: order.expires_at,
    }
}

/// Checks one line's own fields, naming each bad one; answers it as the totals read it.
pub fn check_line(
    errors: &mut Vec<FieldError>,
    i: usize,
    item: &OrderItemIn,
) -> Option<(String, LineIn)> {
    validate::text(errors, &format!("items[{i}].sku"), &item.sku, 255);
    let (Some(name), Some(unit_price)) = (&item.name, item.unit_price) else {
        errors.push(FieldError::new(
            format!("items[{i}]"),
            "give both name and unit_price, or neither to price it from the catalogue",
        ));
        return None;
    };
    validate::text(errors, &format!("items[{i}].name"), name, 255);
    let before = errors.len();
    if !(1..=MAX_QUANTITY).contains(&item.quantity) {
        errors.push(FieldError::new(
            format!("items[{i}].quantity"),
            format!("must be between 1 and {MAX_QUANTITY}"),
        ));
    }
    if !(0..=MAX_AMOUNT).contains(&unit_price) {
        errors.push(FieldError::new(
            format!("items[{i}].unit_price"),
            format!("must be between 0 and {MAX_AMOUNT} minor units"),
        ));
    }
    let tax_rate_bps = item.tax_rate_bps.unwrap_or(0);
    if !(0..=MAX_TAX_RATE_BPS).contains(&tax_rate_bps) {
        errors.push(FieldError::new(
            format!("items[{i}].tax_rate_bps"),
            format!("must be between 0 and {MAX_TAX_RATE_BPS} basis points"),
        ));
    }
    (errors.len() == before).then(|| {
        (
            name.clone(),
            LineIn {
                quantity: item.quantity,
                unit_price,
                tax_rate_bps,
            },
        )
    })
}

/// The totals of checked lines, or the field errors that say why there are none.
pub fn totals_of(
    lines: &[LineIn],
    discount: i64,
    shipping: i64,
) -> Result<Totals, Vec<FieldError>> {
    let refusal = |field: String, message: String| vec![FieldError::new(field, message)];
    let totals = totals::compute(lines, discount, shipping).map_err(|e| match e {
        TotalsError::Line(i) => refusal(
            format!("items[{i}]"),
            format!("quantity × unit_price exceeds {MAX_AMOUNT} minor units"),
        ),
        TotalsError::TaxRate(i) => refusal(
            format!("items[{i}].tax_rate_bps"),
            format!("must be between 0 and {MAX_TAX_RATE_BPS} basis points"),
        ),
        TotalsError::Discount => refusal(
            "discount".into(),
            "must be between 0 and the order's subtotal".into(),
        ),
        TotalsError::Shipping => refusal(
            "shipping".into(),
            format!("must be between 0 and {MAX_AMOUNT} minor units"),
        ),
        TotalsError::Total => refusal(
            "items".into(),
            format!("the order total exceeds {MAX_AMOUNT} minor units"),
        ),
    })?;
    if totals.total == 0 {
        return Err(refusal(
            "items".into(),
            "the order total must be greater than 0".into(),
        ));
    }
    Ok(totals)
}

/// Checks an address's fields under `field`, and writes its country in upper case.
pub fn check_address(errors: &mut Vec<FieldError>, field: &str, address: &mut Address) {
    for (name, value) in [
        ("name", Some(&address.name)),
        ("line1", Some(&address.line1)),
        ("line2", address.line2.as_ref()),
        ("city", Some(&address.city)),
        ("postal_code", address.postal_code.as_ref()),
        ("region", address.region.as_ref()),
        ("phone", address.phone.as_ref()),
    ] {
        if let Some(value) = value {
            validate::text(errors, &format!("{field}.{name}"), value, 255);
        }
    }
    if shared::rules::is_country(&address.country) {
        address.country = address.country.to_ascii_uppercase();
    } else {
        errors.push(FieldError::new(
            format!("{field}.country"),
            "must be an ISO 3166-1 alpha-2 country code, e.g. GB",
        ));
    }
}

/// An address as the order keeps it.
pub fn address_json(address: Option<&Address>) -> Option<serde_json::Value> {
    address.and_then(|a| serde_json::to_value(a).ok())
}

/// Validates the order and computes its totals. Every error names its field.
pub fn validate(
    input: &mut CreateOrderIn,
) -> Result<(Currency, Vec<String>, Totals), Vec<FieldError>> {
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
    let mut names = Vec::with_capacity(input.items.len());
    let mut lines = Vec::with_capacity(input.items.len());
    for (i, item) in input.items.iter().enumerate() {
        if let Some((name, line)) = check_line(&mut errors, i, item) {
            names.push(name);
            lines.push(line);
        }
    }
    if let Some(reference) = &input.reference {
        validate::text(&mut errors, "reference", reference, 255);
    }
    validate::metadata(&mut errors, &input.metadata);
    for (field, address) in [
        ("shipping_address", &mut input.shipping_address),
        ("billing_address", &mut input.billing_address),
    ] {
        if let Some(address) = address {
            check_address(&mut errors, field, address);
        }
    }
    let (discount, shipping) = (input.discount.unwrap_or(0), input.shipping.unwrap_or(0));
    if !errors.is_empty() {
        return Err(errors);
    }
    let totals = totals_of(&lines, discount, shipping)?;
    match currency {
        Some(currency) => Ok((currency, names, totals)),
        None => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(quantity: i64, unit_price: i64) -> OrderItemIn {
        OrderItemIn {
            sku: "sku".into(),
            name: Some("Thing".into()),
            quantity,
            unit_price: Some(unit_price),
            tax_rate_bps: None,
        }
    }

    fn order(items: Vec<OrderItemIn>) -> CreateOrderIn {
        CreateOrderIn {
            user_id: Some("u1".into()),
            items,
            currency: "usd".into(),
            reference: None,
            metadata: None,
            discount: None,
            shipping: None,
            shipping_address: None,
            billing_address: None,
        }
    }

    #[test]
    fn totals_are_sums_of_integer_lines() {
        let (_, _, totals) = validate(&mut order(vec![item(3, 1999), item(1, 1)])).unwrap();
        let lines: Vec<i64> = totals.lines.iter().map(|l| l.gross).collect();
        assert_eq!(lines, vec![5997, 1]);
        assert_eq!(totals.total, 5998);
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut input = order(vec![item(0, 10), item(2, -1)]);
        input.currency = "zzz".into();
        input.items[1].tax_rate_bps = Some(10_001);
        let errors = validate(&mut input).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "currency",
                "items[0].quantity",
                "items[1].unit_price",
                "items[1].tax_rate_bps"
            ]
        );
    }

    #[test]
    fn overflowing_totals_are_refused() {
        let errors = validate(&mut order(vec![item(MAX_QUANTITY, MAX_AMOUNT)])).unwrap_err();
        assert_eq!(errors[0].field, "items[0]");
        let errors =
            validate(&mut order(vec![item(1, MAX_AMOUNT), item(1, MAX_AMOUNT)])).unwrap_err();
        assert_eq!(errors[0].field, "items");
        let errors = validate(&mut order(vec![item(5, 0)])).unwrap_err();
        assert_eq!(errors[0].message, "the order total must be greater than 0");
        let mut input = order(vec![item(1, 100)]);
        input.discount = Some(101);
        assert_eq!(validate(&mut input).unwrap_err()[0].field, "discount");
    }

    #[test]
    fn addresses_are_checked_and_their_country_written_upper_case() {
        let address = |country: &str| Address {
            name: "Ada".into(),
            line1: "12 Square".into(),
            line2: None,
            city: "London".into(),
            postal_code: Some("SW1".into()),
            region: None,
            country: country.into(),
            phone: None,
        };
        let mut input = order(vec![item(1, 100)]);
        input.shipping_address = Some(address("gb"));
        input.billing_address = Some(address("XX"));
        let errors = validate(&mut input).unwrap_err();
        assert_eq!(errors[0].field, "billing_address.country");
        input.billing_address = Some(address("Fr"));
        validate(&mut input).unwrap();
        assert_eq!(input.shipping_address.unwrap().country, "GB");
        assert_eq!(input.billing_address.unwrap().country, "FR");
    }
}
