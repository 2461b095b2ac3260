//! Whose an order is and what its lines cost, before it is validated: a buyer orders for
//! themself, from SKUs and quantities only, each line priced from the catalogue (the browser
//! never sets a price); a service or admin orders for anyone, with explicit lines or catalogue
//! ones.

use sea_orm::ConnectionTrait;
use shared::FieldError;
use shared::api::{CreateOrderIn, OrderItemIn};
use shared::money::Currency;

use super::model::OrderError;
use crate::catalogue;
use crate::platform::Actor;

/// Settles the owner and fills in the catalogue's name, price and tax rate of every line that
/// gave neither name nor price. What cannot be priced is a 422 naming the line; a buyer setting
/// a price, a tax rate, a discount or shipping, or ordering for someone else, a 403.
pub async fn own_and_price<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    input: &mut CreateOrderIn,
) -> Result<(), OrderError> {
    if !actor.is_trusted() {
        match input.user_id.as_deref().map(str::trim) {
            None => input.user_id = Some(actor.user_id.clone()),
            Some(user) if user == actor.user_id => {}
            Some(_) => {
                return Err(OrderError::Forbidden(
                    "Ordering for another user needs the service or admin role".to_owned(),
                ));
            }
        }
        if input.discount.is_some() || input.shipping.is_some() {
            return Err(OrderError::Forbidden(
                "Setting a discount or shipping needs the service or admin role".to_owned(),
            ));
        }
    }
    // An unknown currency is refused by the validation that follows; nothing to price in it.
    let Ok(currency) = Currency::accept(&input.currency) else {
        return Ok(());
    };
    price_items(db, actor, currency, &mut input.items, 0).await
}

/// Fills in the catalogue's name, price and tax rate of each line that gave neither name nor
/// price (errors name `items[first + i]`). A buyer may only send SKUs and quantities.
pub async fn price_items<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    currency: Currency,
    items: &mut [OrderItemIn],
    first: usize,
) -> Result<(), OrderError> {
    if !actor.is_trusted()
        && items
            .iter()
            .any(|i| i.name.is_some() || i.unit_price.is_some() || i.tax_rate_bps.is_some())
    {
        return Err(OrderError::Forbidden(
            "Setting a line's name, price or tax rate needs the service or admin role; send \
             sku and quantity, and the catalogue prices them"
                .to_owned(),
        ));
    }
    let from_catalogue = |i: &OrderItemIn| i.name.is_none() && i.unit_price.is_none();
    let wanted: Vec<String> = items
        .iter()
        .filter(|i| from_catalogue(i))
        .map(|i| i.sku.clone())
        .collect();
    if wanted.is_empty() || items.len() > super::model::MAX_ITEMS {
        return Ok(());
    }
    let code = currency.code();
    let priced = catalogue::priced(db, &wanted, &code).await?;
    let mut errors = Vec::new();
    for (i, item) in items.iter_mut().enumerate() {
        if !from_catalogue(item) {
            continue;
        }
        let field = format!("items[{}].sku", first + i);
        match priced.get(&item.sku) {
            None => errors.push(FieldError::new(field, "no such product in the catalogue")),
            Some(p) if !p.active => errors.push(FieldError::new(field, "is not for sale")),
            Some(p) => match p.unit_price {
                None => errors.push(FieldError::new(field, format!("has no price in {code}"))),
                Some(price) => {
                    item.name = Some(p.name.clone());
                    item.unit_price = Some(price);
                    item.tax_rate_bps = item.tax_rate_bps.or(Some(p.tax_rate_bps));
                }
            },
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(OrderError::Invalid(errors))
    }
}
