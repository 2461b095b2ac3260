//! The OpenAPI 3.1 document of the public API, generated from the bodies' types
//! (`shared::api`) and one annotated operation per route. Served at `/openapi.json`, shown at
//! `/docs`; `docs/openapi.json` is the committed copy that CI checks is current.

#![allow(dead_code)] // the operations below exist to be described, not called

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use shared::api::{
    CheckoutIn, CloudEventIn, CreateOrderIn, DeadLetterOut, DeliveryOut, EventAccepted,
    InboxEntryOut, OrderOut, Page, PartnerIn, PartnerOut, PartnerPatch, PartnerWithSecret,
    PaymentOut, RecoverIn, RecoverOut, RefundIn, RefundOut, ResendIn, RotateIn,
};
use shared::problem::ProblemDetails;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref};
use utoipa::{Modify, OpenApi};

mod billing;
mod inventory;
mod modifiers;
mod orders;

use modifiers::{Links, Rules, operations_mut};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Payment stack",
        description = "Orders, checkout and payments through the gateway; partner webhooks for admins. \
Money is integer minor units of `currency`. Errors are application/problem+json.",
    ),
    paths(
        healthz, readyz,
        create_order, list_orders, get_order, checkout, orders::cancel_order,
        orders::update_order, orders::add_order_item, orders::update_order_item,
        orders::remove_order_item, orders::transition_order, orders::order_history,
        list_payments, get_payment, verify_payment, cancel_payment, create_refund, list_refunds,
        provider_webhook,
        create_partner, list_partners, get_partner, update_partner, delete_partner, rotate_secret,
        list_deliveries, get_delivery, resend, recover, event_deliveries,
        post_event, list_inbox, list_dead_letters, get_dead_letter, replay_dead_letter,
        billing::create_plan, billing::list_plans, billing::get_plan, billing::archive_plan,
        billing::create_subscription, billing::list_subscriptions, billing::get_subscription,
        billing::cancel_subscription, billing::pause_subscription, billing::resume_subscription,
        billing::change_plan, billing::set_payment_method, billing::list_invoices, billing::get_invoice,
        billing::invoice_html, billing::invoice_pdf,
        billing::invoice_checkout, billing::void_invoice, billing::mark_uncollectible,
        billing::create_clock, billing::get_clock, billing::advance_clock,
        billing::revenue, billing::mrr, billing::subscription_stats,
        inventory::get_stock, inventory::set_stock,
        inventory::list_products, inventory::get_product, inventory::put_product,
    ),
    components(schemas(ProblemDetails)),
    modifiers(&Common, &Rules, &Links),
    tags(
        (name = "orders", description = "Created by a buyer from the catalogue or by a trusted backend, edited while pending, paid by their owner, fulfilled by staff (docs/orders.md)"),
        (name = "payments", description = "Checkouts and their outcome"),
        (name = "partners", description = "Webhook partners and deliveries (admin)"),
        (name = "providers", description = "Inbound webhooks from payment providers"),
        (name = "billing", description = "Plans, subscriptions, invoices and test clocks (docs/billing.md)"),
        (name = "inventory", description = "The catalogue, and stock per SKU; checkouts hold what their orders need (docs/orders.md)"),
        (name = "events", description = "Events from other services (CloudEvents 1.0), the inbox and its dead letters"),
        (name = "health"),
    ),
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| ApiDoc::openapi().to_pretty_json().unwrap_or_default())
}

pub async fn serve_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json(),
    )
        .into_response()
}

/// Where the viewer's files are served.
const DOCS_ASSETS: &str = "/docs/assets";

/// Interactive docs (Swagger UI), served whole by the gateway: they work offline and on a
/// network that reaches nothing else.
pub async fn serve_docs() -> Response {
    static PAGE: OnceLock<Option<String>> = OnceLock::new();
    let page = PAGE.get_or_init(|| {
        let mut ui = swagger_ui_redist::SwaggerUi::new();
        ui.title("Payment stack API");
        ui.config().urls(["/openapi.json"]);
        for file in swagger_ui_redist::SwaggerUiStaticFile::all() {
            ui.override_file_path(*file, format!("{DOCS_ASSETS}/{}", file.file_name()));
        }
        ui.serve()
            .inspect_err(|e| tracing::error!(error = %e, "could not render the docs page"))
            .ok()
    });
    match page {
        Some(html) => Html(html.as_str()).into_response(),
        None => shared::Problem::internal().into_response(),
    }
}

/// One of the viewer's files.
pub async fn serve_docs_asset(Path(name): Path<String>) -> Response {
    let found = swagger_ui_redist::SwaggerUi::static_files()
        .iter()
        .find(|(file, _)| file.file_name() == name);
    let Some((_, bytes)) = found else {
        return shared::Problem::not_found(format!("docs file {name}")).into_response();
    };
    let content_type = match name.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        *bytes,
    )
        .into_response()
}

/// The bearer scheme, and the answers every `/api` operation can give.
struct Common;

impl Modify for Common {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        let common = [
            ("401", "No token, or a bad, expired or not yet valid one"),
            ("413", "The body is too large"),
            ("429", "Too many requests; see Retry-After"),
            ("431", "The headers are too large"),
            ("500", "Unexpected; logged with the request id"),
            ("502", "The payment service gave an unusable answer"),
            ("503", "The payment service is unavailable or busy"),
            ("504", "The payment service did not answer in time"),
        ];
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/") {
                continue;
            }
            for operation in operations_mut(item) {
                operation.security = Some(vec![SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
                for (status, description) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem_response(description).into());
                }
            }
        }
    }
}

fn problem_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ProblemDetails")))
                .build(),
        )
        .build()
}

const PROBLEM: &str = "application/problem+json";

#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process answers", body = Object)))]
async fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "payment-ms and its database answer", body = Object),
    (status = 503, description = "Not ready", body = ProblemDetails, content_type = PROBLEM)))]
async fn readyz() {}

/// Create an order: a buyer's own from catalogue SKUs, or any user's (service or admin)
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = CreateOrderIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same key and body")),
    responses(
        (status = 201, description = "Created", body = OrderOut),
        (status = 400, description = "Malformed JSON or key", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "A buyer setting a line's price, or ordering for another user", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "The same key is still being processed", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields (a SKU not in the catalogue, not for sale, or without a price in the currency), or the key was used with another body", body = ProblemDetails, content_type = PROBLEM)))]
async fn create_order() {}

/// List orders (your own; service and admin may filter by user)
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders",
    params(
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("status" = Option<String>, Query, description = "one status (docs/orders.md lists them)"),
        ("user_id" = Option<String>, Query, description = "service and admin only"),
        ("created_from" = Option<String>, Query, format = DateTime, description = "created at or after (RFC 3339)"),
        ("created_to" = Option<String>, Query, format = DateTime, description = "created before (RFC 3339)"),
        ("sort" = Option<String>, Query, description = "-created_at (default), created_at, -amount or amount")),
    responses(
        (status = 200, description = "A page, in the order asked (newest first by default)", body = Page<OrderOut>),
        (status = 422, description = "A bad parameter", body = ProblemDetails, content_type = PROBLEM)))]
async fn list_orders() {}

/// Read an order (owner, service or admin)
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The order", body = OrderOut),
        (status = 404, description = "No such order for you", body = ProblemDetails, content_type = PROBLEM)))]
async fn get_order() {}

/// Start a checkout (the order's owner)
#[utoipa::path(post, path = "/api/v1/orders/{id}/checkout", tag = "payments", request_body = CheckoutIn,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 201, description = "A payment with its checkout_url", body = PaymentOut),
        (status = 400, description = "Malformed JSON or key", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "Only the owner checks out", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such order for you", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Not payable, not enough stock for its tracked lines (`out_of_stock`), or the key is still being processed", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields, or the key was used with another body", body = ProblemDetails, content_type = PROBLEM)))]
async fn checkout() {}

/// List payments (your own; admins may filter by user)
#[utoipa::path(get, path = "/api/v1/payments", tag = "payments",
    params(
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query),
        ("status" = Option<String>, Query, description = "pending, succeeded, failed, canceled, expired, partially_refunded or refunded"),
        ("order_id" = Option<String>, Query),
        ("user_id" = Option<String>, Query, description = "admin only")),
    responses(
        (status = 200, description = "A page, newest first", body = Page<PaymentOut>),
        (status = 422, description = "A bad parameter", body = ProblemDetails, content_type = PROBLEM)))]
async fn list_payments() {}

/// Read a payment (owner or admin)
#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "payments", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The payment", body = PaymentOut),
        (status = 404, description = "No such payment for you", body = ProblemDetails, content_type = PROBLEM)))]
async fn get_payment() {}

/// Ask the provider and record the outcome (owner or admin)
#[utoipa::path(post, path = "/api/v1/payments/{id}/verify", tag = "payments", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The payment as it now is", body = PaymentOut),
        (status = 404, description = "No such payment for you", body = ProblemDetails, content_type = PROBLEM)))]
async fn verify_payment() {}

/// Cancel a pending payment (owner or admin)
#[utoipa::path(post, path = "/api/v1/payments/{id}/cancel", tag = "payments", params(("id" = String, Path)),
    responses(
        (status = 200, description = "Canceled", body = PaymentOut),
        (status = 404, description = "No such payment for you", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Not pending", body = ProblemDetails, content_type = PROBLEM)))]
async fn cancel_payment() {}

/// Refund a succeeded payment, in full or in part (admin)
#[utoipa::path(post, path = "/api/v1/payments/{id}/refunds", tag = "payments", request_body = RefundIn,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 201, description = "The refund: `succeeded`, or `pending` while the provider settles it", body = RefundOut),
        (status = 400, description = "Malformed JSON or key", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "Not an admin", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such payment", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Not refundable (not succeeded, or nothing remains), or the key is still being processed", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields, more than remains, refused by the provider, or the key was used with another body", body = ProblemDetails, content_type = PROBLEM)))]
async fn create_refund() {}

/// List a payment's refunds (owner or admin)
#[utoipa::path(get, path = "/api/v1/payments/{id}/refunds", tag = "payments",
    params(
        ("id" = String, Path),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query)),
    responses(
        (status = 200, description = "A page, newest first", body = Page<RefundOut>),
        (status = 404, description = "No such payment for you", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "A bad parameter", body = ProblemDetails, content_type = PROBLEM)))]
async fn list_refunds() {}

/// Receive a provider's webhook (public: the provider's signature authenticates it)
#[utoipa::path(post, path = "/providers/{provider}/webhook", tag = "providers",
    params(("provider" = String, Path, description = "`stripe`"), ("Stripe-Signature" = Option<String>, Header)),
    request_body(content = Object, description = "The provider's event, byte for byte as signed"),
    responses(
        (status = 200, description = "Handled, or a replay of a handled event (`duplicate`)", body = Object),
        (status = 400, description = "Missing, stale or wrong signature, or not an event", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such provider, or it takes no webhooks here (the mock; Stripe without its signing secret)", body = ProblemDetails, content_type = PROBLEM),
        (status = 413, description = "The body is too large", body = ProblemDetails, content_type = PROBLEM),
        (status = 502, description = "The provider did not answer while the event was handled; it will retry", body = ProblemDetails, content_type = PROBLEM),
        (status = 503, description = "The database or the payment service is unavailable; the provider will retry", body = ProblemDetails, content_type = PROBLEM)))]
async fn provider_webhook() {}

/// Register a partner (admin); the secret is shown once
#[utoipa::path(post, path = "/api/v1/partners", tag = "partners", request_body = PartnerIn,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 201, description = "Registered", body = PartnerWithSecret),
        (status = 400, description = "Malformed JSON or key", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "The key is still being processed", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields (a URL into a private network is one)", body = ProblemDetails, content_type = PROBLEM)))]
async fn create_partner() {}

/// List partners (admin)
#[utoipa::path(get, path = "/api/v1/partners", tag = "partners",
    params(("limit" = Option<u64>, Query, minimum = 1, maximum = 100), ("cursor" = Option<String>, Query)),
    responses(
        (status = 200, description = "A page", body = Page<PartnerOut>),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "A bad parameter", body = ProblemDetails, content_type = PROBLEM)))]
async fn list_partners() {}

/// Read a partner (admin)
#[utoipa::path(get, path = "/api/v1/partners/{id}", tag = "partners", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The partner", body = PartnerOut),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such partner", body = ProblemDetails, content_type = PROBLEM)))]
async fn get_partner() {}

/// Change a partner (admin)
#[utoipa::path(patch, path = "/api/v1/partners/{id}", tag = "partners", request_body = PartnerPatch,
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Changed", body = PartnerOut),
        (status = 400, description = "Malformed JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such partner", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "A built-in partner", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = ProblemDetails, content_type = PROBLEM)))]
async fn update_partner() {}

/// Delete a partner and its delivery log (admin)
#[utoipa::path(delete, path = "/api/v1/partners/{id}", tag = "partners", params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such partner", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "A built-in partner", body = ProblemDetails, content_type = PROBLEM)))]
async fn delete_partner() {}

/// Issue a new secret; the old one signs too during the grace period (admin)
#[utoipa::path(post, path = "/api/v1/partners/{id}/rotate-secret", tag = "partners",
    request_body(content = Option<RotateIn>, description = "Optional"), params(("id" = String, Path)),
    responses(
        (status = 200, description = "The new secret", body = PartnerWithSecret),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such partner", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "A built-in partner", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = ProblemDetails, content_type = PROBLEM)))]
async fn rotate_secret() {}

/// A partner's deliveries, newest first (admin)
#[utoipa::path(get, path = "/api/v1/partners/{id}/deliveries", tag = "partners",
    params(("id" = String, Path), ("limit" = Option<u64>, Query, minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query), ("status" = Option<String>, Query, description = "pending, succeeded, failed or canceled"),
        ("event_id" = Option<String>, Query)),
    responses(
        (status = 200, description = "A page", body = Page<DeliveryOut>),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such partner", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "A bad parameter", body = ProblemDetails, content_type = PROBLEM)))]
async fn list_deliveries() {}

/// One delivery with every attempt (admin)
#[utoipa::path(get, path = "/api/v1/partners/{id}/deliveries/{delivery_id}", tag = "partners",
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses(
        (status = 200, description = "The delivery and its attempt_log", body = DeliveryOut),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such delivery", body = ProblemDetails, content_type = PROBLEM)))]
async fn get_delivery() {}

/// Send one event to a partner again (admin)
#[utoipa::path(post, path = "/api/v1/partners/{id}/resend", tag = "partners", request_body = ResendIn,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 201, description = "A new delivery", body = DeliveryOut),
        (status = 400, description = "Malformed JSON or key", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such partner", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "The partner is disabled, or the key is still being processed", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "No such event", body = ProblemDetails, content_type = PROBLEM)))]
async fn resend() {}

/// Requeue failed deliveries since a time (admin)
#[utoipa::path(post, path = "/api/v1/partners/{id}/recover", tag = "partners", request_body = RecoverIn,
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "How many were requeued", body = RecoverOut),
        (status = 400, description = "Malformed JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such partner", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "The partner is disabled", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = ProblemDetails, content_type = PROBLEM)))]
async fn recover() {}

/// The deliveries of one event, to every partner (admin)
#[utoipa::path(get, path = "/api/v1/events/{id}/deliveries", tag = "partners",
    params(("id" = String, Path), ("limit" = Option<u64>, Query, minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query), ("status" = Option<String>, Query)),
    responses(
        (status = 200, description = "A page", body = Page<DeliveryOut>),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such event", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "A bad parameter", body = ProblemDetails, content_type = PROBLEM)))]
async fn event_deliveries() {}

/// An event from another service (service or admin): a CloudEvents 1.0 structured JSON
/// envelope `{specversion, id, source, type, time?, data}`. Handled once per `(source, id)`:
/// sending it again answers `duplicate: true` and changes nothing.
#[utoipa::path(post, path = "/api/v1/events", tag = "events",
    request_body(content = CloudEventIn, content_type = "application/cloudevents+json",
        description = "user.deleted, order.created, wallet.insufficient_funds, wallet.balance_changed, user.upgraded, subscription.usage_exceeded; other types are acknowledged and ignored"),
    responses(
        (status = 202, description = "Handled now, or before", body = EventAccepted),
        (status = 403, description = "Needs the service or admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Not a valid CloudEvent, or data its type cannot use; nothing recorded", body = ProblemDetails, content_type = PROBLEM),
        (status = 503, description = "A dependency is unavailable; send it again later", body = ProblemDetails, content_type = PROBLEM)))]
async fn post_event() {}

/// Events received from other services, newest first (admin)
#[utoipa::path(get, path = "/api/v1/inbox", tag = "events",
    params(("limit" = Option<u64>, Query, minimum = 1, maximum = 100), ("cursor" = Option<String>, Query),
        ("type" = Option<String>, Query), ("outcome" = Option<String>, Query, description = "applied, recorded or ignored")),
    responses(
        (status = 200, description = "A page", body = Page<InboxEntryOut>),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "A bad parameter", body = ProblemDetails, content_type = PROBLEM)))]
async fn list_inbox() {}

/// Events that could not be handled, newest first (admin)
#[utoipa::path(get, path = "/api/v1/dead-letters", tag = "events",
    params(("limit" = Option<u64>, Query, minimum = 1, maximum = 100), ("cursor" = Option<String>, Query),
        ("status" = Option<String>, Query, description = "dead or replayed")),
    responses(
        (status = 200, description = "A page", body = Page<DeadLetterOut>),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "A bad parameter", body = ProblemDetails, content_type = PROBLEM)))]
async fn list_dead_letters() {}

/// One dead letter (admin)
#[utoipa::path(get, path = "/api/v1/dead-letters/{id}", tag = "events", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The dead letter", body = DeadLetterOut),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such dead letter", body = ProblemDetails, content_type = PROBLEM)))]
async fn get_dead_letter() {}

/// Handle a dead letter again, once its cause is fixed (admin)
#[utoipa::path(post, path = "/api/v1/dead-letters/{id}/replay", tag = "events", params(("id" = String, Path)),
    responses(
        (status = 200, description = "Handled: `{dead_letter, event}`", body = Object),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such dead letter", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Replayed already", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "It can never be handled (the error is kept on the letter)", body = ProblemDetails, content_type = PROBLEM),
        (status = 503, description = "A dependency is still unavailable", body = ProblemDetails, content_type = PROBLEM)))]
async fn replay_dead_letter() {}
