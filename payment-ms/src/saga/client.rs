//! Checkouts holding stock at the external inventory service, through the saga: the saga's row
//! is committed before the service is called, so whatever happens to this process during the
//! call, the worker finds it and finishes or undoes the step.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{EntityTrait, IntoActiveModel};

use super::entities::inventory_sagas;
use super::external::{CallError, ExternalInventory};
use super::{reservation_id, state, step_key, store};
use crate::inventory::{Hold, InventoryClient, InventoryError};
use crate::platform::Core;
use crate::platform::db::after;

/// [`InventoryClient`] over the external service, each checkout a saga.
pub struct SagaInventory {
    pub core: Core,
    pub external: Arc<ExternalInventory>,
    /// How long a reserve call may take before the worker takes its saga over.
    pub lease: Duration,
    /// When a checkout's request is surely over (it made its payment by then, or never will).
    pub settle_after: Duration,
    /// Wakes the worker when a step becomes due.
    pub due: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl InventoryClient for SagaInventory {
    async fn reserve(&self, hold: Hold<'_>) -> Result<bool, InventoryError> {
        if hold.lines.is_empty() {
            return Ok(false);
        }
        let at = hold.at;
        let lease = after(at, self.lease);
        let saga = inventory_sagas::Model {
            payment_id: hold.payment_id.to_owned(),
            order_id: hold.order_id.to_owned(),
            reservation_id: reservation_id(hold.payment_id),
            state: state::RESERVING.to_owned(),
            lines: serde_json::to_value(
                hold.lines
                    .iter()
                    .map(|w| serde_json::json!({"sku": w.sku, "quantity": w.quantity}))
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_default(),
            expires_at: hold.expires_at,
            attempts: 0,
            next_attempt_at: lease,
            lease_until: Some(lease),
            last_error: None,
            created_at: at,
            updated_at: at,
        };
        // The row first: from here on, a crash leaves a saga the worker finishes.
        inventory_sagas::Entity::insert(saga.clone().into_active_model())
            .exec_without_returning(&self.core.db)
            .await?;
        let key = step_key(hold.order_id, "reserve", hold.payment_id);
        let db = &self.core.db;
        match self
            .external
            .reserve(&saga.reservation_id, &key, hold.lines, hold.expires_at)
            .await
        {
            Ok(held) => {
                // Due once this request is surely over: the worker then finds the payment, or
                // releases what a checkout that died before making it held.
                let check = after(at, self.settle_after);
                let from = [state::RESERVING];
                let now = self.core.now();
                let awaiting = state::AWAITING_PAYMENT;
                if store::move_saga(db, hold.payment_id, &from, awaiting, check, now).await? {
                    Ok(held)
                } else {
                    // The worker took it over (this call outlived its lease) and releases it.
                    Err(InventoryError::Unavailable(
                        "the inventory service answered too late; try again".to_owned(),
                    ))
                }
            }
            Err(CallError::OutOfStock(shorts)) => {
                let now = self.core.now();
                store::move_saga(
                    db,
                    hold.payment_id,
                    &[state::RESERVING],
                    state::RELEASED,
                    now,
                    now,
                )
                .await?;
                Err(InventoryError::OutOfStock(shorts))
            }
            Err(e) => {
                // Left `reserving`: once its lease is over, the worker releases whatever the
                // service may have held (this checkout makes no payment).
                tracing::warn!(error = %e, payment_id = hold.payment_id, "could not reserve at the inventory service");
                Err(InventoryError::Unavailable(e.to_string()))
            }
        }
    }

    async fn release(&self, payment_id: &str, at: DateTime<Utc>) -> Result<(), InventoryError> {
        let from = [state::RESERVING, state::AWAITING_PAYMENT];
        if store::move_saga(&self.core.db, payment_id, &from, state::RELEASING, at, at).await? {
            self.due.notify_one();
        }
        Ok(())
    }
}
