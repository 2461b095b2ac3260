//! The catalogue: products by SKU with a unit price per currency. A buyer's order is priced
//! from it (`orders` reads [`priced`]), so the browser never sets a price. Managed by the
//! service and admin roles; buyers read the products for sale.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use shared::FieldError;
use shared::api::Page;
use shared::catalogue::{MAX_PRICES, ProductIn, ProductOut};
use shared::money::{Currency, MAX_AMOUNT, MAX_TAX_RATE_BPS};

use crate::platform::pagination::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::platform::{Actor, Core, Fault, validate};
use entities::{product_prices, products};

pub mod entities;
pub mod routes;

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<DbErr> for CatalogueError {
    fn from(e: DbErr) -> Self {
        CatalogueError::Fault(e.into())
    }
}

/// A product as an order sees it: its name, whether it is for sale, its price in the order's
/// currency (if it has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    pub name: String,
    pub active: bool,
    pub unit_price: Option<i64>,
    pub tax_rate_bps: i64,
}

/// The products among `skus`, each with its price in `currency`.
pub async fn priced<C: ConnectionTrait>(
    db: &C,
    skus: &[String],
    currency: &str,
) -> Result<HashMap<String, Priced>, DbErr> {
    let found = products::Entity::find()
        .filter(products::Column::Sku.is_in(skus.iter().cloned()))
        .all(db)
        .await?;
    let prices: HashMap<String, i64> = product_prices::Entity::find()
        .filter(product_prices::Column::Sku.is_in(skus.iter().cloned()))
        .filter(product_prices::Column::Currency.eq(currency))
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.sku, p.unit_price))
        .collect();
    Ok(found
        .into_iter()
        .map(|p| {
            let unit_price = prices.get(&p.sku).copied();
            (
                p.sku,
                Priced {
                    name: p.name,
                    active: p.active,
                    unit_price,
                    tax_rate_bps: i64::from(p.tax_rate_bps),
                },
            )
        })
        .collect())
}

/// The price lists of `skus`, one query for them all.
async fn prices_of<C: ConnectionTrait>(
    db: &C,
    skus: Vec<String>,
) -> Result<HashMap<String, BTreeMap<String, i64>>, DbErr> {
    let mut lists: HashMap<String, BTreeMap<String, i64>> = HashMap::new();
    for price in product_prices::Entity::find()
        .filter(product_prices::Column::Sku.is_in(skus))
        .all(db)
        .await?
    {
        lists
            .entry(price.sku)
            .or_default()
            .insert(price.currency, price.unit_price);
    }
    Ok(lists)
}

fn product_out(product: products::Model, prices: BTreeMap<String, i64>) -> ProductOut {
    ProductOut {
        sku: product.sku,
        name: product.name,
        prices,
        active: product.active,
        tax_rate_bps: i64::from(product.tax_rate_bps),
        created_at: product.created_at,
        updated_at: product.updated_at,
    }
}

/// Creates or replaces the product under `sku` (service and admin). Answers it, and whether it
/// is new.
pub async fn put_product(
    core: &Core,
    actor: &Actor,
    sku: &str,
    input: ProductIn,
) -> Result<(ProductOut, bool), CatalogueError> {
    if !actor.is_trusted() {
        return Err(CatalogueError::Forbidden(
            "the catalogue is managed by the service and admin roles".to_owned(),
        ));
    }
    let mut errors = Vec::new();
    validate::text(&mut errors, "sku", sku, 255);
    validate::text(&mut errors, "name", &input.name, 255);
    let mut prices = BTreeMap::new();
    if input.prices.is_empty() || input.prices.len() > MAX_PRICES {
        errors.push(FieldError::new(
            "prices",
            format!("must have 1 to {MAX_PRICES} prices, by currency"),
        ));
    }
    for (code, number) in &input.prices {
        let field = format!("prices.{code}");
        // A whole number of minor units, however the JSON wrote it (`2500` or `2500.0`).
        let whole = number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= MAX_AMOUNT as f64)
                .map(|f| f as i64)
        });
        let Some(amount) = whole else {
            errors.push(FieldError::new(
                field,
                format!("must be a whole number of minor units, 0 to {MAX_AMOUNT}"),
            ));
            continue;
        };
        let amount = &amount;
        match Currency::accept(code) {
            Ok(currency) if prices.contains_key(&currency.code()) => {
                errors.push(FieldError::new(
                    field.clone(),
                    "this currency is priced twice",
                ));
            }
            Ok(currency) => {
                prices.insert(currency.code(), *amount);
            }
            Err(refusal) => errors.push(FieldError::new(field.clone(), refusal)),
        }
        if !(0..=MAX_AMOUNT).contains(amount) {
            errors.push(FieldError::new(
                field,
                format!("must be 0 to {MAX_AMOUNT} minor units"),
            ));
        }
    }
    let tax_rate_bps = input.tax_rate_bps.unwrap_or(0);
    if !(0..=MAX_TAX_RATE_BPS).contains(&tax_rate_bps) {
        errors.push(FieldError::new(
            "tax_rate_bps",
            format!("must be between 0 and {MAX_TAX_RATE_BPS} basis points"),
        ));
    }
    validate::finish(errors).map_err(CatalogueError::Invalid)?;
    let tax_rate_bps = tax_rate_bps as i32;
    let at = core.now();
    let txn = core.begin().await?;
    let found = products::Entity::find_by_id(sku)
        .lock_exclusive()
        .one(&txn)
        .await?;
    let created = found.is_none();
    let product = match found {
        Some(product) => {
            let mut product = product.into_active_model();
            product.name = Set(input.name.trim().to_owned());
            product.active = Set(input.active.unwrap_or(true));
            product.tax_rate_bps = Set(tax_rate_bps);
            product.updated_at = Set(at);
            product.update(&txn).await?
        }
        None => {
            products::Model {
                sku: sku.to_owned(),
                name: input.name.trim().to_owned(),
                active: input.active.unwrap_or(true),
                created_at: at,
                updated_at: at,
                tax_rate_bps,
            }
            .into_active_model()
            .insert(&txn)
            .await?
        }
    };
    product_prices::Entity::delete_many()
        .filter(product_prices::Column::Sku.eq(sku))
        .exec(&txn)
        .await?;
    product_prices::Entity::insert_many(prices.iter().map(|(currency, unit_price)| {
        product_prices::Model {
            sku: sku.to_owned(),
            currency: currency.clone(),
            unit_price: *unit_price,
        }
        .into_active_model()
    }))
    .exec_without_returning(&txn)
    .await?;
    core.commit(txn).await?;
    Ok((product_out(product, prices), created))
}

/// A product: any for sale, or any at all for the service and admin roles.
pub async fn get_product(
    core: &Core,
    actor: &Actor,
    sku: &str,
) -> Result<ProductOut, CatalogueError> {
    let product = products::Entity::find_by_id(sku)
        .one(&core.db)
        .await?
        .filter(|p| p.active || actor.is_trusted())
        .ok_or_else(|| CatalogueError::NotFound(format!("product {sku}")))?;
    let mut prices = prices_of(&core.db, vec![product.sku.clone()]).await?;
    let list = prices.remove(&product.sku).unwrap_or_default();
    Ok(product_out(product, list))
}

/// Products by SKU, a page at a time (`cursor`: the last SKU of the previous page). Buyers see
/// those for sale.
pub async fn list_products(
    core: &Core,
    actor: &Actor,
    limit: Option<u64>,
    cursor: Option<String>,
) -> Result<Page<ProductOut>, CatalogueError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(CatalogueError::Invalid(vec![FieldError::new(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )]));
    }
    let mut select = products::Entity::find();
    if !actor.is_trusted() {
        select = select.filter(products::Column::Active.eq(true));
    }
    if let Some(after) = &cursor {
        select = select.filter(products::Column::Sku.gt(after.as_str()));
    }
    let mut rows = select
        .order_by_asc(products::Column::Sku)
        .limit(limit + 1)
        .all(&core.db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|p| p.sku.clone())).flatten();
    let mut prices = prices_of(&core.db, rows.iter().map(|p| p.sku.clone()).collect()).await?;
    let data = rows
        .into_iter()
        .map(|product| {
            let list = prices.remove(&product.sku).unwrap_or_default();
            product_out(product, list)
        })
        .collect();
    Ok(Page { data, next_cursor })
}
