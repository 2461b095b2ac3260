//! The inventory operations: a SKU's stock (docs/orders.md).

#![allow(dead_code)] // described, not called

use shared::inventory::{StockIn, StockOut};
use shared::problem::ProblemDetails;

const PROBLEM: &str = "application/problem+json";

/// Read a SKU's stock: on hand, held by open checkouts, available (service or admin)
#[utoipa::path(get, path = "/api/v1/inventory/{sku}", tag = "inventory", params(("sku" = String, Path)),
    responses(
        (status = 200, description = "The stock", body = StockOut),
        (status = 403, description = "Needs the service or admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "The SKU is not tracked", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn get_stock() {}

/// Set how many units of a SKU are on hand; the SKU is tracked from then on (service or admin)
#[utoipa::path(put, path = "/api/v1/inventory/{sku}", tag = "inventory", request_body = StockIn,
    params(("sku" = String, Path)),
    responses(
        (status = 200, description = "The stock as it now is", body = StockOut),
        (status = 400, description = "Malformed JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "Needs the service or admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "Not a SKU", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Less than open checkouts hold (`stock_reserved`)", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn set_stock() {}
