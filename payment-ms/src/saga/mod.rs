//! The saga of each checkout against an external inventory service (`INVENTORY_URL`): a row per
//! checkout (`inventory_sagas`, keyed by the payment) that says which step it is at, advanced by
//! the checkout itself, by the payments' events (in their transaction) and by a worker that
//! retries due steps under a lease on every replica.
//!
//! ```text
//! reserving ──▶ awaiting_payment ──▶ committing ──▶ done
//!     │               │                  │ reservation lapsed: reserve again, or
//!     │               ▼                  ▼
//!     └──────────▶ releasing ──▶ released    refunding ──▶ refunded   (requires_action when
//!                                                                       the refund is refused)
//! ```
//!
//! Each call to the service is idempotent by the reservation id (`rsv-<payment id>`) and carries
//! `Idempotency-Key: saga:<order>:<step>:<payment>`, so a step repeated after a crash never
//! reserves or commits twice. A saga stuck in `reserving` past its lease is one whose checkout
//! died mid-call: its payment was never made, so it is released.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::platform::Core;
use crate::refunds::service::Refunds;

pub mod client;
pub mod entities;
pub mod external;
pub mod reactions;
pub mod store;
pub mod worker;

/// A saga's steps, as its row keeps them.
pub mod state {
    pub const RESERVING: &str = "reserving";
    pub const AWAITING_PAYMENT: &str = "awaiting_payment";
    pub const COMMITTING: &str = "committing";
    pub const DONE: &str = "done";
    pub const RELEASING: &str = "releasing";
    pub const RELEASED: &str = "released";
    pub const REFUNDING: &str = "refunding";
    pub const REFUNDED: &str = "refunded";
    pub const REQUIRES_ACTION: &str = "requires_action";

    /// The steps the worker takes (when due and not leased). A saga `awaiting_payment` is due
    /// once its checkout's request is surely over, to find a checkout that died before making
    /// its payment, and again when the payment lapses.
    pub const DUE: [&str; 5] = [
        RESERVING,
        AWAITING_PAYMENT,
        COMMITTING,
        RELEASING,
        REFUNDING,
    ];
}

/// The id of a checkout's reservation at the service.
pub fn reservation_id(payment_id: &str) -> String {
    format!("rsv-{payment_id}")
}

/// The idempotency key of one step of one checkout's saga.
pub fn step_key(order_id: &str, step: &str, payment_id: &str) -> String {
    format!("saga:{order_id}:{step}:{payment_id}")
}

/// What the worker needs: the platform, the service, refunds (for a late payment that cannot
/// have its stock), and how long a claimed step is its own.
#[derive(Clone)]
pub struct Saga {
    pub core: Core,
    pub external: Arc<external::ExternalInventory>,
    pub refunds: Refunds,
    /// Wakes the worker when a step became due.
    pub due: Arc<Notify>,
    /// How long a step (or a checkout's reserve call) is its claimer's before another may
    /// take it over.
    pub lease: Duration,
}
