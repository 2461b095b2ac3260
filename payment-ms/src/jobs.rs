//! Periodic work: the expiry sweep and the reconciliation of refunds whose answer was lost.
//! Every round is safe on every replica at once.

use tokio_util::sync::CancellationToken;

use crate::events::outbox;
use crate::platform::db;
use crate::state::AppState;
use crate::{payments, refunds};

const SWEEP_BATCH: u64 = 100;

pub async fn sweep_loop(state: AppState, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(state.config.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => outbox::in_scope(async {
                match payments::service::expire_due(&state, db::now(), SWEEP_BATCH).await {
                    Ok(sweep) if sweep != payments::service::Sweep::default() => {
                        tracing::info!(payments = sweep.payments, orders = sweep.orders,
                            idempotency_keys = sweep.idempotency_keys, "expired what was due");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
                }
                match refunds::service::settle_pending(&state, db::now(), SWEEP_BATCH).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(payments = n, "reconciled pending refunds"),
                    Err(e) => tracing::warn!(error = %e, "refund sweep failed"),
                }
            }).await,
        }
    }
}
