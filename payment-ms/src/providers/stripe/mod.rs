//! Stripe over its REST API: form-encoded requests with `Authorization: Bearer`, a pinned
//! `Stripe-Version`, an `Idempotency-Key` on every write (derived from our own ids, so a retry of
//! ours meets the object Stripe already made), bounded time, and Stripe's error object turned
//! into [`ProviderError`] without the key.
//!
//! Two ways to pay:
//! - Checkout (the default, `STRIPE_MODE=checkout`): a Checkout Session in `payment` mode with the
//!   order's lines; the buyer pays on Stripe's page and comes back to `success_url`.
//! - PaymentIntents: with a saved `payment_method`, a PaymentIntent confirmed at once,
//!   server-side (and `requires_action` handed to the caller). With `STRIPE_MODE=payment_intents`
//!   and no payment method, an unconfirmed PaymentIntent whose client secret the frontend confirms
//!   with Stripe.js.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use shared::api::NextAction;
use url::Url;

use super::{
    CheckoutRequest, CloseReason, InboundError, InboundEvent, PaymentProvider, ProviderCheckout,
    ProviderError, ProviderRefund, ProviderState, ProviderStatus, RefundRequest, RefundStatus,
    Subject, with_payment_id,
};
use crate::payments::entities::payments;

pub mod signature;

pub const NAME: &str = "stripe";
/// The API version every request pins, so Stripe's answers keep the shapes read here.
pub const API_VERSION: &str = "2024-06-20";
/// Checkout Sessions must live between 30 minutes and 24 hours.
const SESSION_MIN_LIFETIME: i64 = 31 * 60;
const SESSION_MAX_LIFETIME: i64 = 24 * 3600 - 60;
/// Refund reasons Stripe itself knows; others are only kept in metadata.
const STRIPE_REFUND_REASONS: [&str; 3] = ["duplicate", "fraudulent", "requested_by_customer"];
const ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Checkout,
    PaymentIntents,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "checkout" => Some(Mode::Checkout),
            "payment_intents" => Some(Mode::PaymentIntents),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `STRIPE_SECRET_KEY`.
    pub secret_key: SecretString,
    /// `STRIPE_API_BASE`.
    pub api_base: Url,
    /// `STRIPE_WEBHOOK_SECRET`: the endpoint's `whsec_…`; without it, inbound webhooks are
    /// refused and payments settle through verify and the expiry sweep only.
    pub webhook_secret: Option<SecretString>,
    /// `STRIPE_MODE`.
    pub mode: Mode,
    /// `STRIPE_TIMEOUT`: the bound on one call to Stripe.
    pub timeout: Duration,
    /// `STRIPE_WEBHOOK_TOLERANCE`: how far a signed timestamp may be from our clock.
    pub webhook_tolerance: Duration,
}

pub struct StripeProvider {
    config: StripeConfig,
    http: reqwest::Client,
}

// ---- Stripe's objects, as far as we read them. Every field we do not need is ignored, and
// every field is optional where Stripe's versions or fakes differ.

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

impl<T: HasId> Expandable<T> {
    fn id(&self) -> &str {
        match self {
            Expandable::Id(id) => id,
            Expandable::Object(object) => object.id(),
        }
    }
}

trait HasId {
    fn id(&self) -> &str;
}

#[derive(Debug, Deserialize)]
struct Session {
    id: String,
    url: Option<String>,
    status: Option<String>,
    payment_status: Option<String>,
    amount_total: Option<i64>,
    currency: Option<String>,
    payment_intent: Option<Expandable<PaymentIntent>>,
    client_reference_id: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct PaymentIntent {
    id: String,
    status: String,
    amount: Option<i64>,
    currency: Option<String>,
    last_payment_error: Option<ErrorBody>,
    next_action: Option<serde_json::Value>,
    client_secret: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

impl HasId for PaymentIntent {
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Debug, Deserialize)]
struct Refund {
    id: String,
    amount: i64,
    status: Option<String>,
    failure_reason: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Charge {
    payment_intent: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct List<T> {
    data: Vec<T>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    message: Option<String>,
    payment_intent: Option<Box<PaymentIntent>>,
}

impl ErrorBody {
    fn code(&self) -> String {
        self.decline_code
            .clone()
            .or_else(|| self.code.clone())
            .or_else(|| self.kind.clone())
            .unwrap_or_else(|| "stripe_error".to_owned())
    }

    fn describe(&self) -> String {
        let code = self.code();
        match &self.message {
            Some(message) => format!("{code}: {message}"),
            None => code,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: serde_json::Value,
}

/// What a call to Stripe came to, before it is read as an object.
enum CallError {
    /// Not reached, timed out, or a 5xx/429 that retries did not cure.
    Unavailable(String),
    /// Stripe answered with its error object.
    Refused {
        status: StatusCode,
        error: ErrorBody,
    },
}

impl From<CallError> for ProviderError {
    fn from(err: CallError) -> Self {
        match err {
            CallError::Unavailable(reason) => ProviderError::Unavailable(reason),
            CallError::Refused { status, error }
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN =>
            {
                tracing::error!(
                    status = status.as_u16(),
                    "Stripe refused our API key; check STRIPE_SECRET_KEY"
                );
                ProviderError::Unavailable(format!("Stripe refused the API key ({})", error.code()))
            }
            CallError::Refused { error, .. } => ProviderError::Rejected {
                code: error.code(),
                message: error
                    .message
                    .unwrap_or_else(|| "refused by Stripe".to_owned()),
            },
        }
    }
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl StripeProvider {
    pub fn new(config: StripeConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("payment-ms/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { config, http })
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.config.api_base.as_str().trim_end_matches('/')
        )
    }

    /// One call, retried (same idempotency key) when Stripe was not reached or asks for a
    /// retry. Only GETs and keyed POSTs are sent, so a retry never does anything twice.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<T, CallError> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            let mut request = self
                .http
                .request(method.clone(), self.url(path))
                .bearer_auth(self.config.secret_key.expose_secret())
                .header("Stripe-Version", API_VERSION)
                .query(query);
            if method == Method::POST {
                request = request.form(body);
            }
            if let Some(key) = idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => {
                    // reqwest's message names the URL and cause, never the headers.
                    last = format!("{method} {path}: {e}");
                    tracing::warn!(attempt, error = %last, "Stripe call failed");
                    continue;
                }
            };
            let status = response.status();
            let should_retry = response
                .headers()
                .get("stripe-should-retry")
                .and_then(|v| v.to_str().ok())
                .map(|v| v == "true");
            let bytes = match response.bytes().await {
                Ok(bytes) => bytes,
                Err(e) => {
                    last = format!("{method} {path}: reading the answer: {e}");
                    continue;
                }
            };
            if status.is_success() {
                return serde_json::from_slice(&bytes).map_err(|e| {
                    CallError::Unavailable(format!("{method} {path}: unexpected answer: {e}"))
                });
            }
            let retryable = should_retry.unwrap_or(
                status.is_server_error()
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::CONFLICT,
            );
            if retryable {
                last = format!("{method} {path}: Stripe answered {status}");
                tracing::warn!(attempt, %status, "Stripe asked for a retry");
                continue;
            }
            let error = serde_json::from_slice::<ErrorEnvelope>(&bytes)
                .map(|e| e.error)
                .unwrap_or_default();
            return Err(CallError::Refused { status, error });
        }
        Err(CallError::Unavailable(last))
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ProviderError> {
        Ok(self.call(Method::GET, path, query, &[], None).await?)
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<T, CallError> {
        self.call(Method::POST, path, &[], body, Some(idempotency_key))
            .await
    }

    async fn start_session(
        &self,
        request: &CheckoutRequest<'_>,
    ) -> Result<ProviderCheckout, ProviderError> {
        let now = Utc::now().timestamp();
        // Stripe's bounds on a session's life; when ours is shorter, the expiry sweep closes
        // the session at our time.
        let expires_at = request
            .expires_at
            .timestamp()
            .clamp(now + SESSION_MIN_LIFETIME, now + SESSION_MAX_LIFETIME)
            .to_string();
        let success_url = with_payment_id(request.success_url, request.payment_id);
        let cancel_url = with_payment_id(request.cancel_url, request.payment_id);
        let mut body = form(&[
            ("mode", "payment"),
            ("client_reference_id", request.payment_id),
            ("success_url", &success_url),
            ("cancel_url", &cancel_url),
            ("expires_at", &expires_at),
            ("metadata[payment_id]", request.payment_id),
            ("metadata[order_id]", request.order_id),
            (
                "payment_intent_data[metadata][payment_id]",
                request.payment_id,
            ),
            ("payment_intent_data[metadata][order_id]", request.order_id),
        ]);
        for (i, item) in request.items.iter().enumerate() {
            let key = |k: &str| format!("line_items[{i}]{k}");
            body.push((key("[quantity]"), item.quantity.to_string()));
            body.push((key("[price_data][currency]"), request.currency.to_owned()));
            body.push((
                key("[price_data][unit_amount]"),
                item.unit_price.to_string(),
            ));
            body.push((key("[price_data][product_data][name]"), item.name.clone()));
        }
        let session: Session = self
            .post(
                "/v1/checkout/sessions",
                &body,
                &format!("checkout-{}", request.payment_id),
            )
            .await?;
        if session.amount_total.is_some_and(|a| a != request.amount) {
            return Err(ProviderError::Unavailable(format!(
                "Stripe computed {:?} for session {}, we expected {}",
                session.amount_total, session.id, request.amount
            )));
        }
        let state = session_state(&session, request.amount)?;
        Ok(ProviderCheckout {
            checkout_url: session.url.clone(),
            reference: Some(session.id),
            state,
        })
    }

    async fn start_intent(
        &self,
        request: &CheckoutRequest<'_>,
    ) -> Result<ProviderCheckout, ProviderError> {
        let amount = request.amount.to_string();
        let mut body = form(&[
            ("amount", &amount),
            ("currency", request.currency),
            ("payment_method_types[0]", "card"),
            ("metadata[payment_id]", request.payment_id),
            ("metadata[order_id]", request.order_id),
        ]);
        if let Some(method) = request.payment_method {
            body.extend(form(&[("payment_method", method), ("confirm", "true")]));
        }
        let created: Result<PaymentIntent, _> = self
            .post(
                "/v1/payment_intents",
                &body,
                &format!("checkout-{}", request.payment_id),
            )
            .await;
        match created {
            Ok(intent) => Ok(ProviderCheckout {
                reference: Some(intent.id.clone()),
                checkout_url: None,
                state: intent_state(&intent, request.amount)?,
            }),
            // A declined card: the attempt exists and has failed.
            Err(CallError::Refused { status, error }) if status == StatusCode::PAYMENT_REQUIRED => {
                Ok(ProviderCheckout {
                    reference: error.payment_intent.as_ref().map(|pi| pi.id.clone()),
                    checkout_url: None,
                    state: ProviderStatus::Failed {
                        reason: error.describe(),
                    }
                    .into(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn session(&self, id: &str) -> Result<Session, ProviderError> {
        self.get(
            &format!("/v1/checkout/sessions/{id}"),
            &[("expand[]", "payment_intent")],
        )
        .await
    }

    async fn intent(&self, id: &str) -> Result<PaymentIntent, ProviderError> {
        self.get(&format!("/v1/payment_intents/{id}"), &[]).await
    }

    /// The PaymentIntent behind a payment: recorded once it was paid, or asked of its session.
    async fn intent_id(&self, payment: &payments::Model) -> Result<String, ProviderError> {
        if let Some(id) = &payment.provider_payment_reference {
            return Ok(id.clone());
        }
        let reference = reference(payment)?;
        if reference.starts_with("pi_") {
            return Ok(reference.to_owned());
        }
        self.session(reference)
            .await?
            .payment_intent
            .map(|pi| pi.id().to_owned())
            .ok_or_else(|| ProviderError::Rejected {
                code: "no_payment".to_owned(),
                message: format!("checkout session {reference} has no payment"),
            })
    }
}

fn reference(payment: &payments::Model) -> Result<&str, ProviderError> {
    payment.provider_reference.as_deref().ok_or_else(|| {
        ProviderError::Unavailable(format!("payment {} has no Stripe reference", payment.id))
    })
}

/// A paid amount that is not ours is never recorded as our payment.
fn check_amount(
    object: &str,
    paid: Option<i64>,
    currency: Option<&str>,
    expected: i64,
) -> Result<(), ProviderError> {
    let amount_ok = paid.is_none_or(|a| a == expected);
    if !amount_ok {
        tracing::error!(
            object,
            ?paid,
            expected,
            "Stripe reports another amount than ours"
        );
        return Err(ProviderError::Unavailable(format!(
            "{object} is for {paid:?}, not {expected} ({})",
            currency.unwrap_or("?")
        )));
    }
    Ok(())
}

fn session_state(session: &Session, amount: i64) -> Result<ProviderState, ProviderError> {
    let intent = session.payment_intent.as_ref().map(|pi| pi.id().to_owned());
    let status = match (session.status.as_deref(), session.payment_status.as_deref()) {
        (Some("complete"), Some("paid" | "no_payment_required")) => {
            check_amount(
                &session.id,
                session.amount_total,
                session.currency.as_deref(),
                amount,
            )?;
            ProviderStatus::Succeeded
        }
        (Some("expired"), _) => ProviderStatus::Expired,
        _ => ProviderStatus::Pending,
    };
    Ok(ProviderState {
        status,
        payment_reference: intent,
        next_action: None,
    })
}

fn intent_state(intent: &PaymentIntent, amount: i64) -> Result<ProviderState, ProviderError> {
    let mut next_action = None;
    let status = match intent.status.as_str() {
        "succeeded" => {
            check_amount(
                &intent.id,
                intent.amount,
                intent.currency.as_deref(),
                amount,
            )?;
            ProviderStatus::Succeeded
        }
        "canceled" => ProviderStatus::Canceled,
        "requires_payment_method" => match &intent.last_payment_error {
            Some(error) => ProviderStatus::Failed {
                reason: error.describe(),
            },
            // Never confirmed: the frontend collects a card with Stripe.js.
            None => {
                next_action = Some(NextAction {
                    kind: "collect_payment_method".to_owned(),
                    redirect_url: None,
                    client_secret: intent.client_secret.clone(),
                });
                ProviderStatus::Pending
            }
        },
        "requires_action" => {
            let action = intent.next_action.as_ref();
            next_action = Some(NextAction {
                kind: action
                    .and_then(|a| a.get("type"))
                    .and_then(|t| t.as_str())
                    .unwrap_or("requires_action")
                    .to_owned(),
                redirect_url: action
                    .and_then(|a| a.pointer("/redirect_to_url/url"))
                    .and_then(|u| u.as_str())
                    .map(str::to_owned),
                client_secret: intent.client_secret.clone(),
            });
            ProviderStatus::Pending
        }
        _ => ProviderStatus::Pending, // processing, requires_confirmation, requires_capture
    };
    Ok(ProviderState {
        status,
        payment_reference: Some(intent.id.clone()),
        next_action,
    })
}

fn refund_of(refund: Refund) -> ProviderRefund {
    let status = match refund.status.as_deref() {
        Some("succeeded") | None => RefundStatus::Succeeded,
        Some("failed" | "canceled") => RefundStatus::Failed {
            reason: refund
                .failure_reason
                .unwrap_or_else(|| "refused by Stripe".to_owned()),
        },
        Some(_) => RefundStatus::Pending, // pending, requires_action
    };
    ProviderRefund {
        reference: refund.id,
        amount: refund.amount,
        status,
        refund_id: refund.metadata.get("refund_id").cloned(),
    }
}

fn body_error(e: serde_json::Error) -> InboundError {
    InboundError::Body(e.to_string())
}

#[async_trait]
impl PaymentProvider for StripeProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn start_checkout(
        &self,
        request: &CheckoutRequest<'_>,
    ) -> Result<ProviderCheckout, ProviderError> {
        if request.payment_method.is_some() || self.config.mode == Mode::PaymentIntents {
            self.start_intent(request).await
        } else {
            self.start_session(request).await
        }
    }

    async fn fetch_status(
        &self,
        payment: &payments::Model,
    ) -> Result<ProviderState, ProviderError> {
        let reference = reference(payment)?;
        if reference.starts_with("cs_") {
            session_state(&self.session(reference).await?, payment.amount)
        } else {
            intent_state(&self.intent(reference).await?, payment.amount)
        }
    }

    async fn close(
        &self,
        payment: &payments::Model,
        reason: CloseReason,
    ) -> Result<ProviderState, ProviderError> {
        let reference = reference(payment)?;
        let key = format!("close-{}", payment.id);
        let closed = if reference.starts_with("cs_") {
            self.post::<Session>(
                &format!("/v1/checkout/sessions/{reference}/expire"),
                &[],
                &key,
            )
            .await
            .map(|s| session_state(&s, payment.amount))
        } else {
            self.post::<PaymentIntent>(
                &format!("/v1/payment_intents/{reference}/cancel"),
                &[],
                &key,
            )
            .await
            .map(|pi| intent_state(&pi, payment.amount))
        };
        let state = match closed {
            Ok(state) => state?,
            // Not closable any more (paid, or already closed): what is it now?
            Err(CallError::Refused { .. }) => self.fetch_status(payment).await?,
            Err(e) => return Err(e.into()),
        };
        Ok(match state.status {
            ProviderStatus::Canceled | ProviderStatus::Expired => ProviderState {
                status: match reason {
                    CloseReason::Canceled => ProviderStatus::Canceled,
                    CloseReason::Expired => ProviderStatus::Expired,
                },
                ..state
            },
            _ => state,
        })
    }

    async fn refund(&self, request: &RefundRequest<'_>) -> Result<ProviderRefund, ProviderError> {
        let intent = self.intent_id(request.payment).await?;
        let amount = request.amount.to_string();
        let mut body = form(&[
            ("payment_intent", &intent),
            ("amount", &amount),
            ("metadata[refund_id]", request.refund_id),
            ("metadata[payment_id]", &request.payment.id),
        ]);
        if let Some(reason) = request.reason {
            if STRIPE_REFUND_REASONS.contains(&reason) {
                body.push(("reason".to_owned(), reason.to_owned()));
            } else {
                body.push(("metadata[reason]".to_owned(), reason.to_owned()));
            }
        }
        let refund: Refund = self
            .post(
                "/v1/refunds",
                &body,
                &format!("refund-{}", request.refund_id),
            )
            .await?;
        Ok(refund_of(refund))
    }

    async fn list_refunds(
        &self,
        payment: &payments::Model,
    ) -> Result<Vec<ProviderRefund>, ProviderError> {
        let intent = self.intent_id(payment).await?;
        let list: List<Refund> = self
            .get(
                "/v1/refunds",
                &[("payment_intent", &intent), ("limit", "100")],
            )
            .await?;
        Ok(list.data.into_iter().map(refund_of).collect())
    }

    fn parse_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<InboundEvent, InboundError> {
        let secret = self
            .config
            .webhook_secret
            .as_ref()
            .ok_or(InboundError::NotConfigured)?;
        let header = headers.get(signature::HEADER).and_then(|v| v.to_str().ok());
        let tolerance = i64::try_from(self.config.webhook_tolerance.as_secs()).unwrap_or(300);
        signature::verify(
            header,
            body,
            secret.expose_secret(),
            now.timestamp(),
            tolerance,
        )
        .map_err(|e| InboundError::Signature(e.to_string()))?;
        let event: Event = serde_json::from_slice(body).map_err(body_error)?;
        let object = event.data.object;
        let subject = match event.kind.as_str() {
            "checkout.session.completed"
            | "checkout.session.expired"
            | "checkout.session.async_payment_succeeded"
            | "checkout.session.async_payment_failed" => {
                let session: Session = serde_json::from_value(object).map_err(body_error)?;
                Some(Subject::Payment {
                    payment_id: session
                        .metadata
                        .get("payment_id")
                        .cloned()
                        .or(session.client_reference_id),
                    reference: session.id,
                })
            }
            "payment_intent.succeeded"
            | "payment_intent.payment_failed"
            | "payment_intent.canceled"
            | "payment_intent.requires_action" => {
                let intent: PaymentIntent = serde_json::from_value(object).map_err(body_error)?;
                Some(Subject::Payment {
                    payment_id: intent.metadata.get("payment_id").cloned(),
                    reference: intent.id,
                })
            }
            "charge.refunded" | "charge.refund.updated" => {
                let charge: Charge = serde_json::from_value(object).map_err(body_error)?;
                charge.payment_intent.map(|pi| Subject::Refunds {
                    payment_id: charge.metadata.get("payment_id").cloned(),
                    payment_reference: pi,
                })
            }
            _ => None,
        };
        Ok(InboundEvent {
            id: event.id,
            event_type: event.kind,
            subject,
        })
    }
}
