//! One SeaORM entity per table (the schema itself lives in the `migrations` crate).

pub mod deliveries;
pub mod delivery_attempts;
pub mod events;
pub mod idempotency_keys;
pub mod mock_refunds;
pub mod mock_sessions;
pub mod order_items;
pub mod orders;
pub mod partners;
pub mod payments;
pub mod provider_events;
pub mod refunds;
