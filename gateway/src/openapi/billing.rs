//! The billing operations: plans, subscriptions, invoices and test clocks (docs/billing.md).

#![allow(dead_code)] // described, not called

use shared::api::{CheckoutIn, Page, PaymentOut};
use shared::billing::{
    AdvanceClockIn, CancelSubscriptionIn, ChangePlanIn, InvoiceOut, PaymentMethodIn, PlanIn,
    PlanOut, SubscriptionIn, SubscriptionOut, TestClockIn, TestClockOut,
};
use shared::problem::ProblemDetails;

const PROBLEM: &str = "application/problem+json";

/// Create a plan, or the next version of the plan with this code (service or admin)
#[utoipa::path(post, path = "/api/v1/plans", tag = "billing", request_body = PlanIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same key and body")),
    responses(
        (status = 201, description = "Created", body = PlanOut),
        (status = 400, description = "Malformed JSON or key", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "Needs the service or admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "The same key is still being processed, or versions created at once", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields, or the key was used with another body", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn create_plan() {}

/// List plan versions (active; service and admin may list archived ones)
#[utoipa::path(get, path = "/api/v1/plans", tag = "billing",
    params(("limit" = Option<u64>, Query, minimum = 1, maximum = 100), ("cursor" = Option<String>, Query),
        ("code" = Option<String>, Query), ("status" = Option<String>, Query, description = "active (default) or archived")),
    responses(
        (status = 200, description = "A page, newest first", body = Page<PlanOut>),
        (status = 422, description = "A bad parameter", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn list_plans() {}

/// Read a plan version
#[utoipa::path(get, path = "/api/v1/plans/{id}", tag = "billing", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The plan version", body = PlanOut),
        (status = 404, description = "No such plan", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn get_plan() {}

/// Archive a plan version: no new subscriptions to it (service or admin)
#[utoipa::path(post, path = "/api/v1/plans/{id}/archive", tag = "billing", params(("id" = String, Path)),
    responses(
        (status = 200, description = "Archived (or already)", body = PlanOut),
        (status = 403, description = "Needs the service or admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such plan", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn archive_plan() {}

/// Subscribe (a user for themself; service or admin for anyone)
#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "billing", request_body = SubscriptionIn,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 201, description = "trialing, incomplete (its first invoice to pay) or active", body = SubscriptionOut),
        (status = 400, description = "Malformed JSON or key", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "Subscribing another user needs the service or admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "The same key is still being processed", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields (no such plan, an archived one, an unknown time zone…)", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn create_subscription() {}

/// List subscriptions (your own; service and admin may filter by user)
#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "billing",
    params(("limit" = Option<u64>, Query, minimum = 1, maximum = 100), ("cursor" = Option<String>, Query),
        ("status" = Option<String>, Query), ("user_id" = Option<String>, Query, description = "service and admin only")),
    responses(
        (status = 200, description = "A page, newest first", body = Page<SubscriptionOut>),
        (status = 422, description = "A bad parameter", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn list_subscriptions() {}

/// Read a subscription (owner, service or admin)
#[utoipa::path(get, path = "/api/v1/subscriptions/{id}", tag = "billing", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionOut),
        (status = 404, description = "No such subscription for you", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn get_subscription() {}

/// Cancel now (the unused part of a paid period is refunded) or at the period's end
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/cancel", tag = "billing", request_body = CancelSubscriptionIn,
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Canceled, or to be at the period's end", body = SubscriptionOut),
        (status = 400, description = "Malformed JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such subscription for you", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Ended already", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn cancel_subscription() {}

/// Pause an active subscription: no invoices until it is resumed
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/pause", tag = "billing", params(("id" = String, Path)),
    responses(
        (status = 200, description = "Paused", body = SubscriptionOut),
        (status = 404, description = "No such subscription for you", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Not active", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn pause_subscription() {}

/// Resume a paused subscription
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/resume", tag = "billing", params(("id" = String, Path)),
    responses(
        (status = 200, description = "Active again", body = SubscriptionOut),
        (status = 404, description = "No such subscription for you", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Not paused", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn resume_subscription() {}

/// Move to another plan: an upgrade now with proration, anything else at the period's end
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/change", tag = "billing", request_body = ChangePlanIn,
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Changed, or the change pending", body = SubscriptionOut),
        (status = 400, description = "Malformed JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such subscription for you", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Not active or trialing", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "No such plan, another currency, or `now` for a downgrade", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn change_plan() {}

/// Set the saved payment method its invoices are charged to; open invoices are charged to it at once
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/payment-method", tag = "billing", request_body = PaymentMethodIn,
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Set (the charges it started have run or are under way)", body = SubscriptionOut),
        (status = 400, description = "Malformed JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such subscription for you", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "The subscription has ended", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Not a payment method id", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn set_payment_method() {}

/// List invoices (your own; service and admin may filter by user)
#[utoipa::path(get, path = "/api/v1/invoices", tag = "billing",
    params(("limit" = Option<u64>, Query, minimum = 1, maximum = 100), ("cursor" = Option<String>, Query),
        ("status" = Option<String>, Query), ("subscription_id" = Option<String>, Query),
        ("user_id" = Option<String>, Query, description = "service and admin only")),
    responses(
        (status = 200, description = "A page, newest first", body = Page<InvoiceOut>),
        (status = 422, description = "A bad parameter", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn list_invoices() {}

/// Read an invoice with its lines (owner, service or admin)
#[utoipa::path(get, path = "/api/v1/invoices/{id}", tag = "billing", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The invoice", body = InvoiceOut),
        (status = 404, description = "No such invoice for you", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn get_invoice() {}

/// The invoice as a printable HTML page (owner, service or admin)
#[utoipa::path(get, path = "/api/v1/invoices/{id}/html", tag = "billing", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The page: issuer, facts, lines and totals; dates in the subscription's time zone", body = String, content_type = "text/html"),
        (status = 404, description = "No such invoice for you", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn invoice_html() {}

/// A PDF file's bytes.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct PdfFile(#[allow(dead_code)] Vec<u8>);

/// The invoice as a PDF (owner, service or admin)
#[utoipa::path(get, path = "/api/v1/invoices/{id}/pdf", tag = "billing", params(("id" = String, Path)),
    responses(
        (status = 200, description = "An A4 PDF, `Content-Disposition: inline` with the number as file name", body = PdfFile, content_type = "application/pdf"),
        (status = 404, description = "No such invoice for you", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn invoice_pdf() {}

/// Pay an open invoice: its order's checkout (the owner)
#[utoipa::path(post, path = "/api/v1/invoices/{id}/checkout", tag = "billing", request_body = CheckoutIn,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 201, description = "A payment with its checkout_url", body = PaymentOut),
        (status = 400, description = "Malformed JSON or key", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "Only the owner pays", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such invoice for you", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Not open, or the key is still being processed", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields, or the key was used with another body", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn invoice_checkout() {}

/// Void an open or draft invoice (service or admin)
#[utoipa::path(post, path = "/api/v1/invoices/{id}/void", tag = "billing", params(("id" = String, Path)),
    responses(
        (status = 200, description = "Void; its order closed", body = InvoiceOut),
        (status = 403, description = "Needs the service or admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such invoice", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Not open or draft", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn void_invoice() {}

/// Give up on an open invoice (service or admin)
#[utoipa::path(post, path = "/api/v1/invoices/{id}/mark-uncollectible", tag = "billing", params(("id" = String, Path)),
    responses(
        (status = 200, description = "Uncollectible; its order closed", body = InvoiceOut),
        (status = 403, description = "Needs the service or admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such invoice", body = ProblemDetails, content_type = PROBLEM),
        (status = 409, description = "Not open", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn mark_uncollectible() {}

/// Create a test clock (admin, with test clocks on)
#[utoipa::path(post, path = "/api/v1/test-clocks", tag = "billing", request_body = TestClockIn,
    responses(
        (status = 200, description = "The clock", body = TestClockOut),
        (status = 400, description = "Malformed JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "Needs the admin role, and test clocks on", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn create_clock() {}

/// Read a test clock (admin)
#[utoipa::path(get, path = "/api/v1/test-clocks/{id}", tag = "billing", params(("id" = String, Path)),
    responses(
        (status = 200, description = "The clock", body = TestClockOut),
        (status = 403, description = "Needs the admin role, and test clocks on", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such clock", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn get_clock() {}

/// Advance a test clock; everything due in between runs in order (admin)
#[utoipa::path(post, path = "/api/v1/test-clocks/{id}/advance", tag = "billing", request_body = AdvanceClockIn,
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The clock at its new time, with the jobs run", body = TestClockOut),
        (status = 400, description = "Malformed JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 403, description = "Needs the admin role, and test clocks on", body = ProblemDetails, content_type = PROBLEM),
        (status = 404, description = "No such clock", body = ProblemDetails, content_type = PROBLEM),
        (status = 415, description = "Not JSON", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "Backwards, or more than 3 years ahead", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn advance_clock() {}

/// Revenue by day or month and currency: succeeded payments (invoices and one-off orders)
/// net of settled refunds, over whole UTC days (admin)
#[utoipa::path(get, path = "/api/v1/stats/revenue", tag = "billing",
    params(("from" = Option<String>, Query, format = DateTime, description = "30 days before `to` by default; counted from the start of its UTC day"),
        ("to" = Option<String>, Query, format = DateTime, description = "now by default; exclusive, counted to the end of the UTC day before it (of its own day unless it is midnight)"),
        ("interval" = Option<String>, Query, description = "day (default) or month")),
    responses(
        (status = 200, description = "`{from, to, interval, data: [{period, currency, gross, refunded, net, payments}]}`: `from` and `to` are the whole days counted", body = Object),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "A bad parameter, or a window too long", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn revenue() {}

/// MRR at `to` by currency, and its movements over the window (admin)
#[utoipa::path(get, path = "/api/v1/stats/mrr", tag = "billing",
    params(("from" = Option<String>, Query, format = DateTime), ("to" = Option<String>, Query, format = DateTime),
        ("test_clock" = Option<String>, Query, description = "a test clock's world instead of the real one")),
    responses(
        (status = 200, description = "`{at, mrr: [{currency, mrr, subscriptions}], from, to, movements: [{currency, kind, amount, subscriptions}]}`; kind is new, expansion, contraction, churn or reactivation", body = Object),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "A bad parameter", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn mrr() {}

/// Subscriptions by status and plan, and churn over the window (admin)
#[utoipa::path(get, path = "/api/v1/stats/subscriptions", tag = "billing",
    params(("from" = Option<String>, Query, format = DateTime), ("to" = Option<String>, Query, format = DateTime),
        ("test_clock" = Option<String>, Query)),
    responses(
        (status = 200, description = "`{by_status: [{status, count}], by_plan: [{plan_id, count}], churn: {from, to, paying_at_start, churned, rate}}`", body = Object),
        (status = 403, description = "Needs the admin role", body = ProblemDetails, content_type = PROBLEM),
        (status = 422, description = "A bad parameter", body = ProblemDetails, content_type = PROBLEM)))]
pub async fn subscription_stats() {}
