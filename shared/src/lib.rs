//! What the gateway and payment-ms share: the error body, money, ids, telemetry and the
//! headers the gateway uses to tell payment-ms who is calling.

pub mod api;
pub mod billing;
pub mod catalogue;
pub mod config;
pub mod http;
pub mod ids;
pub mod internal;
pub mod inventory;
pub mod metrics;
pub mod money;
pub mod orders;
pub mod problem;
pub mod rules;
pub mod shutdown;
pub mod signing;
pub mod telemetry;
pub mod text;

pub use problem::{FieldError, Problem};
