//! The mock provider's hosted checkout page: what a buyer sees after the redirect. It lists the
//! order's lines and total, and offers Pay and Decline; either answers 303 back to the shop.
//!
//! The page is locked down as a payment page must be: it cannot be framed by another site (no
//! clickjacking of the Pay button), loads nothing but its own style, and its form is accepted
//! only from the page itself (`Sec-Fetch-Site`, or `Origin` for browsers without it), so a
//! cross-site form cannot press Pay for a buyer.

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use sea_orm::DbErr;
use serde::Deserialize;
use shared::ids;
use shared::money::Currency;

use crate::AppState;

use crate::platform::http::error::{Error, Result};
use crate::platform::http::page::locked_page;
use crate::providers::mock::BuyerAction;
use crate::providers::{
    CheckoutLine, PaymentProvider, PaymentRef, ProviderError, ProviderStatus, with_payment_id,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/checkout/{payment_id}", get(show).post(act))
        .route("/favicon.ico", get(favicon))
}

/// The page's one style sheet, inline, allowed by its hash.
const STYLE: &str = "\
*{box-sizing:border-box}\
body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#1f2328;line-height:1.4}\
h1{font-size:1.6rem}\
table{width:100%;border-collapse:collapse;margin:1rem 0}\
th,td{padding:.5rem .4rem;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top}\
.item{overflow-wrap:anywhere}\
.n{text-align:right;white-space:nowrap}\
.muted{color:#59636e}\
.detail{display:block;font-size:.9rem;color:#59636e;overflow-wrap:anywhere}\
code{overflow-wrap:anywhere}\
form{display:flex;flex-wrap:wrap;gap:.5rem}\
button{font-size:1rem;padding:.7rem 1.2rem;border-radius:6px;border:1px solid #1f883d;background:#1f883d;color:#fff;cursor:pointer;overflow-wrap:anywhere}\
button.secondary{background:#fff;color:#cf222e;border-color:#cf222e}\
@media (max-width:30rem){body{margin:1rem auto}button{flex:1 1 100%}}";

/// The favicon browsers ask for on their own.
const FAVICON: &[u8] = include_bytes!("favicon.ico");

#[derive(Deserialize)]
struct ActionForm {
    action: String,
}

/// A payment with the mock provider, as its page shows it.
#[derive(Debug, Clone)]
pub struct PageCheckout {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub provider_reference: Option<String>,
    pub provider_payment_reference: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// Whether the payment is still waiting to be paid on our side.
    pub pending: bool,
    pub success_url: String,
    pub cancel_url: String,
}

impl PageCheckout {
    fn provider_ref(&self) -> PaymentRef<'_> {
        PaymentRef {
            id: &self.id,
            amount: self.amount,
            currency: &self.currency,
            provider_reference: self.provider_reference.as_deref(),
            provider_payment_reference: self.provider_payment_reference.as_deref(),
            expires_at: self.expires_at,
        }
    }
}

/// Where the page reads the payments it shows (the payments context provides it): the page
/// knows no table but the mock provider's own.
#[async_trait]
pub trait PageCheckouts: Send + Sync {
    /// The payment `payment_id` if it is one with the mock provider.
    async fn find(&self, payment_id: &str) -> Result<Option<PageCheckout>, DbErr>;

    /// The lines of what the payment pays for.
    async fn lines(&self, payment_id: &str) -> Result<Vec<CheckoutLine>, DbErr>;
}

async fn find(state: &AppState, payment_id: &str) -> Result<Option<PageCheckout>> {
    if !ids::is_valid(ids::PAYMENT, payment_id) {
        return Ok(None);
    }
    Ok(state.mock_pages.find(payment_id).await?)
}

async fn show(State(state): State<AppState>, Path(payment_id): Path<String>) -> Result<Response> {
    let Some(payment) = find(&state, &payment_id).await? else {
        return Ok(unknown());
    };
    let provider_status = state
        .mock
        .fetch_status(payment.provider_ref())
        .await
        .map_err(provider_error)?
        .status;
    let open = payment.pending
        && provider_status == ProviderStatus::Pending
        && state.core.now() < payment.expires_at;
    if !open {
        let message = match provider_status {
            ProviderStatus::Succeeded => format!(
                "<p>This checkout has been paid.</p><p><a href=\"{}\">Return to the shop</a></p>",
                attr(&with_payment_id(&payment.success_url, &payment.id))
            ),
            _ => "<p>This checkout is closed and can no longer be paid.</p>".to_owned(),
        };
        return Ok(page(StatusCode::OK, "Checkout closed", &message, &[]));
    }
    let items = state.mock_pages.lines(&payment.id).await?;
    // The form's answer redirects to the shop: CSP's form-action must allow its two pages.
    let targets = [&payment.success_url, &payment.cancel_url].map(|u| origin_of(u));
    Ok(page(
        StatusCode::OK,
        "Checkout",
        &checkout_body(&payment, &items),
        &targets,
    ))
}

async fn act(
    State(state): State<AppState>,
    Path(payment_id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Result<Response> {
    if !sent_from_our_page(&headers, &state.config.public_base_url) {
        tracing::warn!(%payment_id, "refused a checkout form sent from another site");
        return Ok(page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "<p>This form can only be sent from the checkout page itself.</p>",
            &[],
        ));
    }
    let action = match form.action.as_str() {
        "pay" => BuyerAction::Pay,
        "decline" => BuyerAction::Decline,
        _ => {
            return Ok(page(
                StatusCode::BAD_REQUEST,
                "Unknown action",
                "<p>The action must be pay or decline.</p>",
                &[],
            ));
        }
    };
    let Some(payment) = find(&state, &payment_id).await? else {
        return Ok(unknown());
    };
    let accepted = payment.pending
        && state
            .mock
            .act(payment.provider_ref(), action, state.core.now())
            .await
            .map_err(provider_error)?;
    if !accepted {
        return Ok(page(
            StatusCode::CONFLICT,
            "Checkout closed",
            "<p>This checkout is closed and can no longer be paid.</p>",
            &[],
        ));
    }
    tracing::info!(payment_id = %payment.id, ?action, "mock checkout completed by the buyer");
    let target = match action {
        BuyerAction::Pay => &payment.success_url,
        BuyerAction::Decline => &payment.cancel_url,
    };
    let location = HeaderValue::try_from(with_payment_id(target, &payment.id))
        .map_err(|e| Error::Internal(anyhow::anyhow!("a stored return URL is unusable: {e}")))?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response())
}

/// Whether a form post comes from our own page. A browser says where a request comes from:
/// `Sec-Fetch-Site` (every current browser), else `Origin`. A request with neither is not a
/// browser's cross-site form (a script or curl, which could post anyway) and is let through.
fn sent_from_our_page(headers: &HeaderMap, public_base_url: &url::Url) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return site.eq_ignore_ascii_case("same-origin");
    }
    match header("origin") {
        Some(origin) => origin == public_base_url.origin().ascii_serialization(),
        None => true,
    }
}

async fn favicon() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/x-icon"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        FAVICON,
    )
        .into_response()
}

/// The mock provider's state is in our database: its database errors are ours (a 503 when it
/// cannot be reached), anything else is a bug.
fn provider_error(err: ProviderError) -> Error {
    match err {
        ProviderError::Db(e) => Error::Db(e),
        other => Error::Internal(other.into()),
    }
}

fn unknown() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Unknown checkout",
        "<p>There is no checkout at this address.</p>",
        &[],
    )
}

/// `scheme://host[:port]` of a URL, for a CSP source list; `None` if it has none.
fn origin_of(url: &str) -> Option<String> {
    let origin = url::Url::parse(url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

fn checkout_body(payment: &PageCheckout, items: &[CheckoutLine]) -> String {
    let currency = Currency::parse(&payment.currency);
    let money = |minor: i64| match currency {
        Some(c) => c.format(minor),
        None => format!("{minor} {}", payment.currency),
    };
    let rows: String = items
        .iter()
        .map(|i| {
            format!(
                "<tr><td class=\"item\">{}<span class=\"detail\">{} · {} × {}</span></td>\
                 <td class=\"n\">{}</td></tr>",
                text(&i.name),
                text(&i.sku),
                i.quantity,
                text(&money(i.unit_price)),
                text(&money(i.line_total))
            )
        })
        .collect();
    format!(
        r#"<p class="muted">Mock provider: no money moves. Payment <code>{id}</code></p>
<table><thead><tr><th>Item</th><th class="n">Total</th></tr></thead>
<tbody>{rows}</tbody>
<tfoot><tr><th>Amount due</th><th class="n" id="amount">{total}</th></tr></tfoot></table>
<form method="post" action="/checkout/{id_attr}">
<button type="submit" name="action" value="pay">Pay {total}</button>
<button type="submit" name="action" value="decline" class="secondary">Decline</button>
</form>"#,
        id = text(&payment.id),
        id_attr = attr(&payment.id),
        total = text(&money(payment.amount)),
    )
}

/// A page with the headers every page of the checkout carries. `form_targets`: the origins the
/// page's form may lead to (through its redirect), besides its own.
fn page(status: StatusCode, title: &str, body: &str, form_targets: &[Option<String>]) -> Response {
    let targets: Vec<String> = form_targets.iter().flatten().cloned().collect();
    locked_page(status, title, STYLE, body, &targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_page_may_send_the_form() {
        let base = url::Url::parse("https://pay.example/").unwrap();
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, HeaderValue::from_static(value));
            }
            sent_from_our_page(&headers, &base)
        };
        assert!(with(&[("sec-fetch-site", "same-origin")]));
        assert!(!with(&[("sec-fetch-site", "cross-site")]));
        assert!(!with(&[("sec-fetch-site", "same-site")]));
        assert!(!with(&[("sec-fetch-site", "none")]));
        assert!(with(&[("origin", "https://pay.example")]));
        assert!(!with(&[("origin", "https://evil.example")]));
        assert!(!with(&[("origin", "null")]));
        // Sec-Fetch-Site decides when both are there.
        assert!(!with(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://pay.example")
        ]));
        assert!(with(&[]));
    }
}
