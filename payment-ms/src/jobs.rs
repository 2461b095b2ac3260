//! Periodic work: the expiry sweep and the reconciliation of refunds whose answer was lost.
//! Every round is safe on every replica at once.

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::events::outbox;
use crate::inbound::service as inbound;
use crate::orders;
use crate::platform::http::error::Result;
use crate::platform::http::idempotency;
use crate::state::AppState;

const SWEEP_BATCH: u64 = 100;

/// What one expiry sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    pub payments: usize,
    pub orders: usize,
    pub idempotency_keys: u64,
}

/// Expires pending payments and orders past their time at `at` (after asking the provider, so
/// a payment made at the last moment is recorded as paid), and forgets old idempotency keys
/// and provider event ids.
pub async fn expire_due(state: &AppState, at: DateTime<Utc>, batch: u64) -> Result<Sweep> {
    let payments = state.payments.expire_due(at, batch).await?;
    let orders = orders::service::expire_due(&state.core, state.checkouts(), at, batch).await?;
    let idempotency_keys = idempotency::purge_expired(&state.core.db, at).await?;
    inbound::forget_old_events(&state.core.db, at).await?;
    Ok(Sweep {
        payments,
        orders,
        idempotency_keys,
    })
}

pub async fn sweep_loop(state: AppState, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(state.config.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => outbox::in_scope(async {
                match expire_due(&state, state.core.now(), SWEEP_BATCH).await {
                    Ok(sweep) if sweep != Sweep::default() => {
                        tracing::info!(payments = sweep.payments, orders = sweep.orders,
                            idempotency_keys = sweep.idempotency_keys, "expired what was due");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
                }
                match state.refunds.settle_pending(state.core.now(), SWEEP_BATCH).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(payments = n, "reconciled pending refunds"),
                    Err(e) => tracing::warn!(error = %e, "refund sweep failed"),
                }
            }).await,
        }
    }
}
