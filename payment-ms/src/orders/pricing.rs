//! Whose an order is and what its lines cost, before it is validated: a buyer orders for
//! themself, from SKUs and quantities only, each line priced from the catalogue (the browser
//! never sets a price); a service or admin orders for anyone, with explicit lines or catalogue
//! ones.

use sea_orm::ConnectionTrait;
use shared::FieldError;
use shared::api::CreateOrderIn;
use shared::money::Currency;

use super::model::OrderError;
use crate::catalogue;
use crate::platform::Actor;

/// Settles the owner and fills in the catalogue's name and price of every line that gave
/// neither. What cannot be priced is a 422 naming the line; a buyer setting a price or ordering
/// for someone else, a 403.
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
        if input
            .items
            .iter()
            .any(|i| i.name.is_some() || i.unit_price.is_some())
        {
            return Err(OrderError::Forbidden(
                "Setting a line's name or price needs the service or admin role; send sku \
                 and quantity, and the catalogue prices them"
                    .to_owned(),
            ));
        }
    }
    let wanted: Vec<String> = input
        .items
        .iter()
        .filter(|i| i.name.is_none() && i.unit_price.is_none())
        .map(|i| i.sku.clone())
        .collect();
    // An unknown currency is refused by the validation that follows; nothing to price in it.
    let Ok(currency) = Currency::accept(&input.currency) else {
        return Ok(());
    };
    if wanted.is_empty() || input.items.len() > super::model::MAX_ITEMS {
        return Ok(());
    }
    let code = currency.code();
    let priced = catalogue::priced(db, &wanted, &code).await?;
    let mut errors = Vec::new();
    for (i, item) in input.items.iter_mut().enumerate() {
        if item.name.is_some() || item.unit_price.is_some() {
            continue;
        }
        let field = format!("items[{i}].sku");
        match priced.get(&item.sku) {
            None => errors.push(FieldError::new(field, "no such product in the catalogue")),
            Some(p) if !p.active => errors.push(FieldError::new(field, "is not for sale")),
            Some(p) => match p.unit_price {
                None => errors.push(FieldError::new(field, format!("has no price in {code}"))),
                Some(price) => {
                    item.name = Some(p.name.clone());
                    item.unit_price = Some(price);
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
