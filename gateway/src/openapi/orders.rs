//! The order operations beyond creation, reading and checkout: edits while pending, the
//! lifecycle's moves and the history (docs/orders.md).

#![allow(dead_code)] // described, not called

use shared::api::{OrderItemIn, OrderOut};
use shared::orders::{
    CancelOrderIn, OrderHistoryOut, OrderTransitionIn, UpdateOrderIn, UpdateOrderItemIn,
};
use shared::problem::ProblemDetails;

const PROBLEM: &str = "application/problem+json";

/// Change a pending order: addresses (owner, service, admin), discount and shipping (service, admin)
#[utoipa::path(patch, path = "/api/v1/orders/{id}", tag = "orders", request_body = UpdateOrderIn,
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The order, totals computed again", body = OrderOut),
        (status = 400, description = "Malformed JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "A buyer setting a discount or shipping", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such order for you", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Not pending (`order_not_editable`)", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields (a discount over the subtotal, a country not in ISO 3166-1)", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn update_order() {}

/// Add a line to a pending order (a buyer: SKU and quantity, priced from the catalogue)
#[utoipa::path(post, path = "/api/v1/orders/{id}/items", tag = "orders", request_body = OrderItemIn,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same key and body")),
    responses(
        (status = 200, description = "The order with the line (a line of the same SKU and price takes the quantity)", body = OrderOut),
        (status = 400, description = "Malformed JSON or key", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "A buyer setting a name, price or tax rate", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such order for you", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Not pending (`order_not_editable`), or the key is still being processed", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields, a SKU the catalogue cannot price, or the key was used with another body", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn add_order_item() {}

/// Change the quantity of a pending order's line
#[utoipa::path(patch, path = "/api/v1/orders/{id}/items/{item_id}", tag = "orders", request_body = UpdateOrderItemIn,
    params(("id" = String, Path), ("item_id" = String, Path)),
    responses(
        (status = 200, description = "The order, totals computed again", body = OrderOut),
        (status = 400, description = "Malformed JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such order or line for you", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Not pending (`order_not_editable`)", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid quantity, or the discount would exceed the subtotal", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn update_order_item() {}

/// Remove a pending order's line (not its last one: cancel the order instead)
#[utoipa::path(delete, path = "/api/v1/orders/{id}/items/{item_id}", tag = "orders",
    params(("id" = String, Path), ("item_id" = String, Path)),
    responses(
        (status = 200, description = "The order, totals computed again", body = OrderOut),
        (status = 404, description = "No such order or line for you", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Not pending, or its last line (`order_not_editable`)", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "The discount would exceed the subtotal, or the total would be 0", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn remove_order_item() {}

/// Cancel an order not paid yet, with an optional reason (owner, service, admin)
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders",
    request_body(content = Option<CancelOrderIn>, description = "Optional: leave the body out, or give a reason"),
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Canceled", body = OrderOut),
        (status = 400, description = "Malformed JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such order for you", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Paid or ended (`order_not_cancelable`): a paid order is canceled by a refund in full", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "A body that is not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid reason", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn cancel_order() {}

/// Move an order on: fulfillment, `requires_action`, or a cancel before payment (service, admin)
#[utoipa::path(post, path = "/api/v1/orders/{id}/transition", tag = "orders", request_body = OrderTransitionIn,
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The order as it now is", body = OrderOut),
        (status = 400, description = "Malformed JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "Needs the service or admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such order", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "The lifecycle has no such move from the order's status (`order_transition_not_allowed`)", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields (a shipment without carrier and tracking number, `requires_action` without a reason)", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn transition_order() {}

/// An order's history: its creation, then each move (who, from, to, why, when)
#[utoipa::path(get, path = "/api/v1/orders/{id}/history", tag = "orders",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Oldest first", body = Vec<OrderHistoryOut>),
        (status = 404, description = "No such order for you", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn order_history() {}
