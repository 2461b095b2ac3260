//! Setting and reading a SKU's stock (service and admin).

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QuerySelect, Set};
use shared::FieldError;
use shared::inventory::{MAX_ON_HAND, StockIn, StockOut};

use super::InventoryError;
use super::builtin::held_of;
use super::entities::stock;
use crate::platform::{Actor, Core, validate};

fn trusted(actor: &Actor) -> Result<(), InventoryError> {
    if actor.is_trusted() {
        Ok(())
    } else {
        Err(InventoryError::Forbidden(
            "stock is managed by the service and admin roles".to_owned(),
        ))
    }
}

/// The public view of a stock row, with what is held of it now.
fn stock_out(row: stock::Model, reserved: i64) -> StockOut {
    StockOut {
        available: row.on_hand - reserved,
        sku: row.sku,
        on_hand: row.on_hand,
        reserved,
        updated_at: row.updated_at,
    }
}

async fn held_now<C: ConnectionTrait>(
    db: &C,
    sku: &str,
    at: DateTime<Utc>,
) -> Result<i64, InventoryError> {
    Ok(held_of(db, &[sku.to_owned()], at)
        .await?
        .get(sku)
        .copied()
        .unwrap_or(0))
}

/// Sets how many units of `sku` are on hand (tracking it from now on). Never below what open
/// checkouts hold: that is a 409, and nothing changes.
pub async fn set_stock(
    core: &Core,
    actor: &Actor,
    sku: &str,
    input: StockIn,
) -> Result<StockOut, InventoryError> {
    trusted(actor)?;
    let mut errors = Vec::new();
    validate::text(&mut errors, "sku", sku, 255);
    if !(0..=MAX_ON_HAND).contains(&input.on_hand) {
        errors.push(FieldError::new(
            "on_hand",
            format!("must be 0 to {MAX_ON_HAND}"),
        ));
    }
    validate::finish(errors).map_err(InventoryError::Invalid)?;
    let at = core.now();
    let txn = core.begin().await?;
    let found = stock::Entity::find_by_id(sku)
        .lock_exclusive()
        .one(&txn)
        .await?;
    let held = held_now(&txn, sku, at).await?;
    if input.on_hand < held {
        return Err(InventoryError::Conflict(
            "stock_reserved",
            format!("{held} units of {sku} are held by open checkouts; on hand cannot be less"),
        ));
    }
    let row = match found {
        Some(row) => {
            let mut row = row.into_active_model();
            row.on_hand = Set(input.on_hand);
            row.updated_at = Set(at);
            row.update(&txn).await?
        }
        None => {
            stock::Model {
                sku: sku.to_owned(),
                on_hand: input.on_hand,
                created_at: at,
                updated_at: at,
            }
            .into_active_model()
            .insert(&txn)
            .await?
        }
    };
    core.commit(txn).await?;
    // The holds were read under the row's lock: none was added since.
    Ok(stock_out(row, held))
}

pub async fn get_stock(core: &Core, actor: &Actor, sku: &str) -> Result<StockOut, InventoryError> {
    trusted(actor)?;
    let row = stock::Entity::find_by_id(sku)
        .one(&core.db)
        .await?
        .ok_or_else(|| InventoryError::NotFound(format!("stock of {sku}")))?;
    let held = held_now(&core.db, sku, core.now()).await?;
    Ok(stock_out(row, held))
}
