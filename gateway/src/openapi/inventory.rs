//! The catalogue and inventory operations: products and their prices, a SKU's stock
//! (docs/orders.md).

#![allow(dead_code)] // described, not called

use shared::api::Page;
use shared::catalogue::{ProductIn, ProductOut};
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

/// List products by SKU (buyers see those for sale)
#[utoipa::path(get, path = "/api/v1/products", tag = "inventory",
    params(("limit" = Option<u64>, Query, minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page: the last SKU")),
    responses(
        (status = 200, description = "A page, by SKU", body = Page<ProductOut>),
        (status = 422, description = "A bad parameter", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn list_products() {}

/// Read a product and its prices (buyers: one for sale)
#[utoipa::path(get, path = "/api/v1/products/{sku}", tag = "inventory", params(("sku" = String, Path)),
    responses(
        (status = 200, description = "The product", body = ProductOut),
        (status = 404, description = "No such product (for sale)", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn get_product() {}

/// Create or replace a product and its prices (service or admin)
#[utoipa::path(put, path = "/api/v1/products/{sku}", tag = "inventory", request_body = ProductIn,
    params(("sku" = String, Path)),
    responses(
        (status = 200, description = "Replaced", body = ProductOut),
        (status = 201, description = "Created", body = ProductOut),
        (status = 400, description = "Malformed JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "Needs the service or admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "Not a SKU", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields (a price's currency or amount)", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn put_product() {}
