//! Payment providers behind one trait. The domain asks a provider to start a checkout, to tell
//! a payment's status, and to close a checkout; it never knows which provider it talks to.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::DbErr;

use crate::entities::{order_items, payments};

pub mod mock;

/// What a provider needs to show the buyer a checkout.
pub struct CheckoutRequest<'a> {
    pub payment_id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub items: &'a [order_items::Model],
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// A started checkout: the provider's reference and where to send the buyer.
pub struct ProviderCheckout {
    pub reference: String,
    pub checkout_url: String,
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

/// Why a checkout is being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Canceled,
    Expired,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached or failed; retrying later may work.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    #[error("provider storage: {0}")]
    Db(#[from] DbErr),
}

#[async_trait]
pub trait PaymentProvider: Send + Sync {
    fn name(&self) -> &'static str;

    async fn start_checkout(
        &self,
        request: &CheckoutRequest<'_>,
    ) -> Result<ProviderCheckout, ProviderError>;

    async fn fetch_status(
        &self,
        payment: &payments::Model,
    ) -> Result<ProviderStatus, ProviderError>;

    /// Closes an open checkout so it can no longer be paid, and answers the resulting status:
    /// `Canceled`/`Expired`, or whatever the payment had already become (a buyer may have paid
    /// a moment before).
    async fn close(
        &self,
        payment: &payments::Model,
        reason: CloseReason,
    ) -> Result<ProviderStatus, ProviderError>;
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
