//! What every context stands on: the HTTP layer, the database, pagination and validation.

pub mod db;
pub mod entities;
pub mod http;
pub mod metrics;
pub mod pagination;
pub mod validate;
