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

use std::time::Duration;

use async_trait::async_trait;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use secrecy::SecretString;
use url::Url;

use super::{
    CheckoutRequest, CloseReason, InboundError, InboundEvent, PaymentProvider, PaymentRef,
    ProviderCheckout, ProviderError, ProviderRefund, ProviderState, ProviderStatus, RefundRequest,
    with_payment_id,
};
use client::{CallError, form};
use mapping::{intent_state, refund_of, session_state};
use wire::{List, PaymentIntent, Refund, Session};

mod client;
mod mapping;
pub mod signature;
mod webhook;
mod wire;

pub const NAME: &str = "stripe";
/// The API version every request pins, so Stripe's answers keep the shapes read here.
pub const API_VERSION: &str = "2024-06-20";
/// Checkout Sessions must live between 30 minutes and 24 hours.
const SESSION_MIN_LIFETIME: i64 = 31 * 60;
const SESSION_MAX_LIFETIME: i64 = 24 * 3600 - 60;
/// Refund reasons Stripe itself knows; others are only kept in metadata.
const STRIPE_REFUND_REASONS: [&str; 3] = ["duplicate", "fraudulent", "requested_by_customer"];

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
        let payable = request.payable;
        let payable_key = format!("metadata[{}]", payable.metadata_name());
        let intent_payable_key =
            format!("payment_intent_data[metadata][{}]", payable.metadata_name());
        let mut body = form(&[
            ("mode", "payment"),
            ("client_reference_id", request.payment_id),
            ("success_url", &success_url),
            ("cancel_url", &cancel_url),
            ("expires_at", &expires_at),
            ("metadata[payment_id]", request.payment_id),
            (&payable_key, payable.id()),
            (
                "payment_intent_data[metadata][payment_id]",
                request.payment_id,
            ),
            (&intent_payable_key, payable.id()),
        ]);
        for (i, item) in request.lines.iter().enumerate() {
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
        let payable_key = format!("metadata[{}]", request.payable.metadata_name());
        let mut body = form(&[
            ("amount", &amount),
            ("currency", request.currency),
            ("payment_method_types[0]", "card"),
            ("metadata[payment_id]", request.payment_id),
            (&payable_key, request.payable.id()),
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
    async fn intent_id(&self, payment: PaymentRef<'_>) -> Result<String, ProviderError> {
        if let Some(id) = payment.provider_payment_reference {
            return Ok(id.to_owned());
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

fn reference(payment: PaymentRef<'_>) -> Result<&str, ProviderError> {
    payment.provider_reference.ok_or_else(|| {
        ProviderError::Unavailable(format!("payment {} has no Stripe reference", payment.id))
    })
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

    async fn fetch_status(&self, payment: PaymentRef<'_>) -> Result<ProviderState, ProviderError> {
        let reference = reference(payment)?;
        if reference.starts_with("cs_") {
            session_state(&self.session(reference).await?, payment.amount)
        } else {
            intent_state(&self.intent(reference).await?, payment.amount)
        }
    }

    async fn close(
        &self,
        payment: PaymentRef<'_>,
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
            ("metadata[payment_id]", request.payment.id),
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
        payment: PaymentRef<'_>,
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
        webhook::parse(&self.config, headers, body, now)
    }
}
