//! What the benchmarks share: recording events as payment-ms does, and percentiles.

use std::time::{Duration, Instant};

use payment_ms::events::Event;

/// Records `n` `order.paid` events in transactions of 200, each about an order of its own (as in
/// life: a subject has a few events). Answers their ids, each with when it was committed.
pub async fn record_events(
    state: &payment_ms::AppState,
    n: usize,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let at = state.core.now();
    let mut order = shared::api::OrderOut {
        id: String::new(),
        number: None,
        user_id: "user_bench".to_owned(),
        status: "paid".to_owned(),
        status_reason: None,
        amount: 4848,
        subtotal: 4848,
        discount: 0,
        shipping: 0,
        tax: 0,
        currency: "usd".to_owned(),
        reference: Some("res_42".to_owned()),
        metadata: serde_json::json!({}),
        items: Vec::new(),
        shipping_address: None,
        billing_address: None,
        carrier: None,
        tracking_number: None,
        created_at: at,
        updated_at: at,
        expires_at: at,
    };
    let mut committed = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let chunk = left.min(200);
        let txn = payment_ms::platform::db::begin_write(&state.core.db).await?;
        let mut ids = Vec::with_capacity(chunk);
        for _ in 0..chunk {
            order.id = shared::ids::new_id(shared::ids::ORDER);
            let event = Event::OrderPaid(&order);
            ids.push(
                state
                    .core
                    .outbox
                    .record(&txn, event, state.core.now())
                    .await?,
            );
        }
        state.core.commit(txn).await?;
        let at = Instant::now();
        committed.extend(ids.into_iter().map(|id| (id, at)));
        left -= chunk;
    }
    Ok(committed)
}

/// The `p` percentile (0 to 1) of durations sorted ascending.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
