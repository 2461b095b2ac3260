//! Payment providers behind one trait. The domain asks a provider to start a checkout, to tell
//! a payment's state, to close a checkout, to refund, and to read its webhooks; it never knows
//! which provider it talks to.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use sea_orm::DbErr;
use shared::api::NextAction;

pub mod mock;
pub mod stripe;

/// What a payment pays for: an order today (an invoice, later). Providers keep it in their
/// metadata and know nothing else of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payable<'a> {
    Order(&'a str),
}

impl Payable<'_> {
    pub fn id(&self) -> &str {
        match self {
            Payable::Order(id) => id,
        }
    }

    /// The name it is kept under in a provider's metadata.
    pub fn metadata_name(&self) -> &'static str {
        match self {
            Payable::Order(_) => "order_id",
        }
    }
}

/// A line of what is paid for, as a checkout page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutLine {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub line_total: i64,
}

/// A payment as a provider sees it: our id, what is due, the provider's own references, and
/// until when it may be paid.
#[derive(Debug, Clone, Copy)]
pub struct PaymentRef<'a> {
    pub id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    /// The provider's checkout (a Stripe session or PaymentIntent, a mock session).
    pub provider_reference: Option<&'a str>,
    /// The money movement behind the checkout, once known (Stripe's PaymentIntent).
    pub provider_payment_reference: Option<&'a str>,
    pub expires_at: DateTime<Utc>,
}

/// What a provider needs to show the buyer a checkout.
pub struct CheckoutRequest<'a> {
    pub payment_id: &'a str,
    pub payable: Payable<'a>,
    pub amount: i64,
    pub currency: &'a str,
    pub lines: &'a [CheckoutLine],
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    pub expires_at: DateTime<Utc>,
    /// A saved payment method to charge at once, server-side, instead of a hosted page.
    pub payment_method: Option<&'a str>,
}

/// A started checkout: the provider's reference, where to send the buyer (if anywhere), and
/// the payment's first state (a server-side charge may be settled at once).
pub struct ProviderCheckout {
    pub reference: Option<String>,
    pub checkout_url: Option<String>,
    pub state: ProviderState,
}

/// A payment's state as the provider sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderStatus {
    Pending,
    Succeeded,
    Failed { reason: String },
    Canceled,
    Expired,
}

/// A status with what else the provider told: the reference of the money movement behind a
/// checkout (Stripe's PaymentIntent), and what the buyer must still do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderState {
    pub status: ProviderStatus,
    pub payment_reference: Option<String>,
    pub next_action: Option<NextAction>,
}

impl From<ProviderStatus> for ProviderState {
    fn from(status: ProviderStatus) -> Self {
        ProviderState {
            status,
            payment_reference: None,
            next_action: None,
        }
    }
}

/// Why a checkout is being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Canceled,
    Expired,
}

/// A refund to make at the provider. Calling [`PaymentProvider::refund`] again with the same
/// `refund_id` must not refund twice.
pub struct RefundRequest<'a> {
    pub refund_id: &'a str,
    pub payment: PaymentRef<'a>,
    pub amount: i64,
    pub reason: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed { reason: String },
}

/// A refund as the provider knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRefund {
    pub reference: String,
    pub amount: i64,
    pub status: RefundStatus,
    /// Our refund id, when we started it.
    pub refund_id: Option<String>,
}

/// A verified inbound webhook: which event, and whose state it says changed. The event is a
/// trigger: the domain then asks the provider for the current state, so events arriving late,
/// twice or out of order cannot move a payment backwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEvent {
    pub id: String,
    pub event_type: String,
    pub subject: Option<Subject>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A checkout or payment changed: refresh the payment.
    Payment {
        payment_id: Option<String>,
        reference: String,
    },
    /// Money was refunded at the provider: reconcile the payment's refunds.
    Refunds {
        payment_id: Option<String>,
        payment_reference: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached or failed; retrying later may work.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request; retrying it unchanged will not help.
    #[error("provider refused the request: {code}: {message}")]
    Rejected { code: String, message: String },
    /// The provider does not offer this (e.g. saved payment methods on the mock).
    #[error("not supported by this provider: {0}")]
    Unsupported(String),
    #[error("provider storage: {0}")]
    Db(#[from] DbErr),
}

/// Why an inbound webhook was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InboundError {
    #[error("webhook signature: {0}")]
    Signature(String),
    #[error("webhook body: {0}")]
    Body(String),
    #[error("this provider receives no webhooks")]
    NotConfigured,
}

/// Checkouts a provider starts at once for [`PaymentProvider::start_checkouts`] by default.
pub const CONCURRENT_STARTS: usize = 16;

#[async_trait]
pub trait PaymentProvider: Send + Sync {
    fn name(&self) -> &'static str;

    async fn start_checkout(
        &self,
        request: &CheckoutRequest<'_>,
    ) -> Result<ProviderCheckout, ProviderError>;

    /// Starts many checkouts (a bill run's charges of saved payment methods), each answered as
    /// [`start_checkout`](Self::start_checkout) answers it, in their order; by default
    /// [`CONCURRENT_STARTS`] at a time.
    async fn start_checkouts(
        &self,
        requests: &[CheckoutRequest<'_>],
    ) -> Vec<Result<ProviderCheckout, ProviderError>> {
        let mut started = Vec::with_capacity(requests.len());
        for chunk in requests.chunks(CONCURRENT_STARTS) {
            let calls: Vec<_> = chunk.iter().map(|r| self.start_checkout(r)).collect();
            started.extend(futures::future::join_all(calls).await);
        }
        started
    }

    async fn fetch_status(&self, payment: PaymentRef<'_>) -> Result<ProviderState, ProviderError>;

    /// Closes an open checkout so it can no longer be paid, and answers the resulting state:
    /// `Canceled`/`Expired`, or whatever the payment had already become (a buyer may have paid
    /// a moment before).
    async fn close(
        &self,
        payment: PaymentRef<'_>,
        reason: CloseReason,
    ) -> Result<ProviderState, ProviderError>;

    /// Refunds part or all of a succeeded payment; idempotent per `refund_id`.
    async fn refund(&self, request: &RefundRequest<'_>) -> Result<ProviderRefund, ProviderError>;

    /// Every refund the provider holds for a payment, ours and those made elsewhere (e.g. in
    /// the provider's dashboard).
    async fn list_refunds(
        &self,
        payment: PaymentRef<'_>,
    ) -> Result<Vec<ProviderRefund>, ProviderError>;

    /// Verifies and reads an inbound webhook. `now` is the receiving time (for the tolerance
    /// on signed timestamps).
    fn parse_webhook(
        &self,
        _headers: &HeaderMap,
        _body: &[u8],
        _now: DateTime<Utc>,
    ) -> Result<InboundEvent, InboundError> {
        Err(InboundError::NotConfigured)
    }
}

/// `url` with `payment_id=…` added to its query, keeping what it had: where a provider sends
/// the buyer back.
pub fn with_payment_id(url: &str, payment_id: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.query_pairs_mut().append_pair("payment_id", payment_id);
            u.into()
        }
        Err(_) => url.to_owned(),
    }
}

/// The configured providers, by name.
#[derive(Clone)]
pub struct Providers {
    by_name: HashMap<&'static str, Arc<dyn PaymentProvider>>,
    default: String,
}

impl Providers {
    pub fn new(providers: Vec<Arc<dyn PaymentProvider>>, default: &str) -> Self {
        Self {
            by_name: providers.into_iter().map(|p| (p.name(), p)).collect(),
            default: default.to_owned(),
        }
    }

    pub fn default_name(&self) -> &str {
        &self.default
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn PaymentProvider>> {
        self.by_name.get(name).cloned()
    }

    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.by_name.keys().copied().collect();
        names.sort_unstable();
        names
    }
}
