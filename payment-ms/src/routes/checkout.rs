//! The mock provider's hosted checkout page: what a buyer sees after the redirect. It lists the
//! order's lines and total, and offers Pay and Decline; either answers 303 back to the shop.

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use serde::Deserialize;
use shared::ids;
use shared::money::Currency;

use crate::AppState;
use crate::db::now;
use crate::entities::{order_items, payments};
use crate::error::{Error, Result};
use crate::orders::load_items;
use crate::payments::PaymentStatus;
use crate::providers::mock::{self, BuyerAction};
use crate::providers::with_payment_id;
use crate::providers::{PaymentProvider, ProviderError, ProviderStatus};

pub fn router() -> Router<AppState> {
    Router::new().route("/checkout/{payment_id}", get(show).post(act))
}

#[derive(Deserialize)]
struct ActionForm {
    action: String,
}

async fn find(state: &AppState, payment_id: &str) -> Result<Option<payments::Model>> {
    if !ids::is_valid(ids::PAYMENT, payment_id) {
        return Ok(None);
    }
    use sea_orm::EntityTrait;
    Ok(payments::Entity::find_by_id(payment_id)
        .one(&state.db)
        .await?
        .filter(|p| p.provider == mock::NAME))
}

async fn show(State(state): State<AppState>, Path(payment_id): Path<String>) -> Result<Response> {
    let Some(payment) = find(&state, &payment_id).await? else {
        return Ok(page(
            StatusCode::NOT_FOUND,
            "Unknown checkout",
            "<p>There is no checkout at this address.</p>",
        ));
    };
    let provider_status = state
        .mock
        .fetch_status(&payment)
        .await
        .map_err(provider_error)?
        .status;
    let open = payment.status == PaymentStatus::Pending.as_str()
        && provider_status == ProviderStatus::Pending
        && now() < payment.expires_at;
    if !open {
        let message = match provider_status {
            ProviderStatus::Succeeded => format!(
                "<p>This checkout has been paid.</p><p><a href=\"{}\">Return to the shop</a></p>",
                attr(&with_payment_id(&payment.success_url, &payment.id))
            ),
            _ => "<p>This checkout is closed and can no longer be paid.</p>".to_owned(),
        };
        return Ok(page(StatusCode::OK, "Checkout closed", &message));
    }
    let items = load_items(&state.db, &payment.order_id).await?;
    Ok(page(
        StatusCode::OK,
        "Checkout",
        &checkout_body(&payment, &items),
    ))
}

async fn act(
    State(state): State<AppState>,
    Path(payment_id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response> {
    let action = match form.action.as_str() {
        "pay" => BuyerAction::Pay,
        "decline" => BuyerAction::Decline,
        _ => {
            return Ok(page(
                StatusCode::BAD_REQUEST,
                "Unknown action",
                "<p>The action must be pay or decline.</p>",
            ));
        }
    };
    let Some(payment) = find(&state, &payment_id).await? else {
        return Ok(page(
            StatusCode::NOT_FOUND,
            "Unknown checkout",
            "<p>There is no checkout at this address.</p>",
        ));
    };
    let accepted = payment.status == PaymentStatus::Pending.as_str()
        && state
            .mock
            .act(&payment, action, now())
            .await
            .map_err(provider_error)?;
    if !accepted {
        return Ok(page(
            StatusCode::CONFLICT,
            "Checkout closed",
            "<p>This checkout is closed and can no longer be paid.</p>",
        ));
    }
    tracing::info!(payment_id = %payment.id, ?action, "mock checkout completed by the buyer");
    let target = match action {
        BuyerAction::Pay => &payment.success_url,
        BuyerAction::Decline => &payment.cancel_url,
    };
    Ok(Redirect::to(&with_payment_id(target, &payment.id)).into_response())
}

/// The mock provider's state is in our database: its database errors are ours (a 503 when it
/// cannot be reached), anything else is a bug.
fn provider_error(err: ProviderError) -> Error {
    match err {
        ProviderError::Db(e) => Error::Db(e),
        other => Error::Internal(other.into()),
    }
}

fn checkout_body(payment: &payments::Model, items: &[order_items::Model]) -> String {
    let currency = Currency::parse(&payment.currency);
    let money = |minor: i64| match currency {
        Some(c) => c.format(minor),
        None => format!("{minor} {}", payment.currency),
    };
    let rows: String = items
        .iter()
        .map(|i| {
            format!(
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                text(&i.name),
                text(&i.sku),
                i.quantity,
                money(i.unit_price),
                money(i.line_total)
            )
        })
        .collect();
    format!(
        r#"<p class="muted">Mock provider: no money moves. Payment <code>{id}</code></p>
<table><thead><tr><th>Item</th><th>SKU</th><th class="n">Qty</th><th class="n">Unit price</th><th class="n">Total</th></tr></thead>
<tbody>{rows}</tbody>
<tfoot><tr><th colspan="4">Amount due</th><th class="n" id="amount">{total}</th></tr></tfoot></table>
<form method="post" action="/checkout/{id_attr}">
<button type="submit" name="action" value="pay">Pay {total}</button>
<button type="submit" name="action" value="decline" class="secondary">Decline</button>
</form>"#,
        id = text(&payment.id),
        id_attr = attr(&payment.id),
        total = text(&money(payment.amount)),
    )
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#1f2328}}
table{{width:100%;border-collapse:collapse;margin:1rem 0}}th,td{{padding:.4rem;border-bottom:1px solid #d0d7de;text-align:left}}
.n{{text-align:right}}.muted{{color:#59636e}}button{{font-size:1rem;padding:.6rem 1.2rem;margin-right:.5rem;border-radius:6px;border:1px solid #1f883d;background:#1f883d;color:#fff;cursor:pointer}}
button.secondary{{background:#fff;color:#cf222e;border-color:#cf222e}}
</style></head><body><h1>{title}</h1>{body}</body></html>"#,
        title = text(title)
    );
    let mut response = (status, Html(html)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
