//! `/internal/v1/plans`, `/subscriptions`, `/invoices` and `/test-clocks`.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use shared::Problem;
use shared::api::{CheckoutIn, PaymentOut};
use shared::billing::{
    AdvanceClockIn, CancelSubscriptionIn, ChangePlanIn, InvoiceOut, PaymentMethodIn, PlanIn,
    PlanOut, SubscriptionIn, SubscriptionOut, TestClockIn, TestClockOut,
};

use super::figures::{self, FiguresQuery, Mrr, Revenue, SubscriptionFigures};
use super::invoices::{self, ListInvoicesQuery};
use super::model::{BillingError, InvoiceStatus};
use super::plans::{self, ListPlansQuery};
use super::subscriptions::{self, ListSubscriptionsQuery};
use super::{clocks, documents};
use crate::AppState;
use crate::orders::model::OrderId;
use crate::platform::Actor;
use crate::platform::http::error::{Error, Result};
use crate::platform::http::extract::{IdempotencyKey, Json as Body, Query};
use crate::platform::http::page::locked_page;
use crate::platform::http::{idempotency, idempotent};
use crate::platform::pagination::Page;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/plans", post(create_plan).get(list_plans))
        .route("/plans/{id}", get(get_plan))
        .route("/plans/{id}/archive", post(archive_plan))
        .route(
            "/subscriptions",
            post(create_subscription).get(list_subscriptions),
        )
        .route("/subscriptions/{id}", get(get_subscription))
        .route("/subscriptions/{id}/cancel", post(cancel))
        .route("/subscriptions/{id}/pause", post(pause))
        .route("/subscriptions/{id}/resume", post(resume))
        .route("/subscriptions/{id}/change", post(change))
        .route("/subscriptions/{id}/payment-method", post(payment_method))
        .route("/invoices", get(list_invoices))
        .route("/invoices/{id}", get(get_invoice))
        .route("/invoices/{id}/html", get(invoice_html))
        .route("/invoices/{id}/pdf", get(invoice_pdf))
        .route("/invoices/{id}/checkout", post(checkout))
        .route("/invoices/{id}/void", post(void))
        .route(
            "/invoices/{id}/mark-uncollectible",
            post(mark_uncollectible),
        )
        .route("/test-clocks", post(create_clock))
        .route("/test-clocks/{id}", get(get_clock))
        .route("/test-clocks/{id}/advance", post(advance_clock))
        .route("/stats/revenue", get(revenue))
        .route("/stats/mrr", get(mrr))
        .route("/stats/subscriptions", get(subscription_figures))
}

impl From<BillingError> for Error {
    fn from(e: BillingError) -> Self {
        match e {
            BillingError::Invalid(errors) => Problem::validation(errors).into(),
            BillingError::NotFound(what) => Problem::not_found(what).into(),
            BillingError::Forbidden(detail) => Problem::forbidden(detail).into(),
            BillingError::Conflict(code, detail) => Problem::conflict(code, detail).into(),
            BillingError::Fault(fault) => fault.into(),
        }
    }
}

async fn create_plan(
    State(state): State<AppState>,
    actor: Actor,
    key: IdempotencyKey,
    uri: Uri,
    Body { value, raw }: Body<PlanIn>,
) -> Response {
    let request = idempotent(&state, &actor, key, &uri, &raw);
    let (state, actor) = (&state, &actor);
    idempotency::run(request, |_then| async move {
        Ok(plans::create_plan(&state.billing.core, actor, value).await?)
    })
    .await
}

async fn list_plans(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<ListPlansQuery>,
) -> Result<Json<Page<PlanOut>>> {
    Ok(Json(
        plans::list_plans(&state.billing.core, &actor, query).await?,
    ))
}

async fn get_plan(
    State(state): State<AppState>,
    _actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<PlanOut>> {
    Ok(Json(plans::get_plan(&state.billing.core, &id).await?))
}

async fn archive_plan(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<PlanOut>> {
    Ok(Json(
        plans::archive_plan(&state.billing.core, &actor, &id).await?,
    ))
}

async fn create_subscription(
    State(state): State<AppState>,
    actor: Actor,
    key: IdempotencyKey,
    uri: Uri,
    Body { value, raw }: Body<SubscriptionIn>,
) -> Response {
    let request = idempotent(&state, &actor, key, &uri, &raw);
    let (state, actor) = (&state, &actor);
    idempotency::run(request, |_then| async move {
        Ok(subscriptions::create_subscription(&state.billing, actor, value).await?)
    })
    .await
}

async fn list_subscriptions(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<ListSubscriptionsQuery>,
) -> Result<Json<Page<SubscriptionOut>>> {
    Ok(Json(
        subscriptions::list_subscriptions(&state.billing, &actor, query).await?,
    ))
}

async fn get_subscription(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionOut>> {
    Ok(Json(
        subscriptions::get_subscription(&state.billing, &actor, &id).await?,
    ))
}

async fn cancel(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body { value, .. }: Body<CancelSubscriptionIn>,
) -> Result<Json<SubscriptionOut>> {
    Ok(Json(
        subscriptions::cancel_subscription(&state.billing, &actor, &id, value).await?,
    ))
}

async fn pause(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionOut>> {
    Ok(Json(
        subscriptions::pause_or_resume(&state.billing, &actor, &id, true).await?,
    ))
}

async fn resume(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionOut>> {
    Ok(Json(
        subscriptions::pause_or_resume(&state.billing, &actor, &id, false).await?,
    ))
}

async fn change(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body { value, .. }: Body<ChangePlanIn>,
) -> Result<Json<SubscriptionOut>> {
    Ok(Json(
        subscriptions::change_plan(&state.billing, &actor, &id, value).await?,
    ))
}

async fn payment_method(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body { value, .. }: Body<PaymentMethodIn>,
) -> Result<Json<SubscriptionOut>> {
    Ok(Json(
        subscriptions::set_payment_method(&state.billing, &actor, &id, value).await?,
    ))
}

async fn list_invoices(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<ListInvoicesQuery>,
) -> Result<Json<Page<InvoiceOut>>> {
    Ok(Json(
        invoices::list_invoices(&state.billing, &actor, query).await?,
    ))
}

async fn get_invoice(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<InvoiceOut>> {
    Ok(Json(
        invoices::get_invoice(&state.billing, &actor, &id).await?,
    ))
}

/// The invoice as a printable page.
async fn invoice_html(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    let sheet = documents::invoice_sheet(&state.billing, &actor, &id).await?;
    Ok(locked_page(
        StatusCode::OK,
        &sheet.title,
        documents::html::STYLE,
        &documents::html::body(&sheet),
        &[],
    ))
}

/// The invoice as a PDF, shown in the browser (`inline`) under its number as file name.
async fn invoice_pdf(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response> {
    let sheet = documents::invoice_sheet(&state.billing, &actor, &id).await?;
    let pdf = documents::pdf::render(&sheet);
    // The file name is a number or an id: letters, digits, `-` and `_` only.
    let disposition = format!("inline; filename=\"{}.pdf\"", sheet.file_name);
    let mut response = (StatusCode::OK, pdf).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(value) = HeaderValue::try_from(disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// Opens a checkout for an open invoice: its order's checkout.
async fn checkout(
    State(state): State<AppState>,
    actor: Actor,
    key: IdempotencyKey,
    uri: Uri,
    Path(id): Path<String>,
    Body { value, raw }: Body<CheckoutIn>,
) -> Response {
    let request = idempotent(&state, &actor, key, &uri, &raw);
    let (state, actor) = (&state, &actor);
    idempotency::run(request, |then| async move {
        let invoice = invoices::find_visible(&state.billing.core.db, actor, &id).await?;
        let order = match (
            invoice.status,
            invoice.order_id.as_deref().and_then(OrderId::parse),
        ) {
            (InvoiceStatus::Open, Some(order)) => order,
            (status, _) => {
                return Err(Error::from(BillingError::Conflict(
                    "invoice_not_payable",
                    format!(
                        "The invoice is {status}; only an open invoice with an amount due is paid"
                    ),
                )));
            }
        };
        let paid: PaymentOut = state.payments.checkout(actor, &order, value, &then).await?;
        Ok(paid)
    })
    .await
}

async fn void(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<InvoiceOut>> {
    Ok(Json(
        invoices::end_by_hand(&state.billing, &actor, &id, InvoiceStatus::Void).await?,
    ))
}

async fn mark_uncollectible(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<InvoiceOut>> {
    Ok(Json(
        invoices::end_by_hand(&state.billing, &actor, &id, InvoiceStatus::Uncollectible).await?,
    ))
}

async fn create_clock(
    State(state): State<AppState>,
    actor: Actor,
    Body { value, .. }: Body<TestClockIn>,
) -> Result<Json<TestClockOut>> {
    Ok(Json(
        clocks::create_clock(&state.billing, &actor, value).await?,
    ))
}

async fn get_clock(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<TestClockOut>> {
    Ok(Json(clocks::get_clock(&state.billing, &actor, &id).await?))
}

async fn advance_clock(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Body { value, .. }: Body<AdvanceClockIn>,
) -> Result<Json<TestClockOut>> {
    Ok(Json(
        clocks::advance_clock(&state.billing, &actor, &id, value).await?,
    ))
}

async fn revenue(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<FiguresQuery>,
) -> Result<Json<Revenue>> {
    Ok(Json(figures::revenue(&state.core, &actor, query).await?))
}

async fn mrr(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<FiguresQuery>,
) -> Result<Json<Mrr>> {
    Ok(Json(
        figures::mrr_figures(&state.core, &actor, query).await?,
    ))
}

async fn subscription_figures(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<FiguresQuery>,
) -> Result<Json<SubscriptionFigures>> {
    Ok(Json(
        figures::subscription_figures(&state.core, &actor, query).await?,
    ))
}
