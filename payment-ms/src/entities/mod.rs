//! One SeaORM entity per table (the schema itself lives in the `migrations` crate).

pub mod events;
pub mod idempotency_keys;
pub mod mock_sessions;
pub mod order_items;
pub mod orders;
pub mod payments;
