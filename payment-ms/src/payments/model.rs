//! A payment: its statuses, its public view, and what can go wrong.

use sea_orm::entity::prelude::*;
use shared::FieldError;
use shared::api::PaymentOut;

use super::entities::payments;
use crate::orders::model::OrderError;
use crate::platform::Fault;
use crate::providers::{PaymentRef, ProviderError, ProviderState, ProviderStatus};

crate::platform::typed_id!(
    /// A payment's id.
    PaymentId,
    shared::ids::PAYMENT
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::None)",
    rename_all = "snake_case"
)]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
    Canceled,
    Expired,
    PartiallyRefunded,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Canceled => "canceled",
            PaymentStatus::Expired => "expired",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub const ALL: [PaymentStatus; 7] = [
        Self::Pending,
        Self::Succeeded,
        Self::Failed,
        Self::Canceled,
        Self::Expired,
        Self::PartiallyRefunded,
        Self::Refunded,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether a payment in this status has money that can still be refunded.
    pub fn is_refundable(self) -> bool {
        matches!(self, Self::Succeeded | Self::PartiallyRefunded)
    }
}

crate::platform::status_text!(PaymentStatus);

/// Why a payment use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// No such payment, or not one the actor may see.
    #[error("payment {0} not found")]
    NotFound(String),
    /// The order to pay could not be paid (not found, not payable).
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error("only the order's owner can check it out")]
    NotOwner,
    /// An earlier checkout of the order turned out paid while it was being closed.
    #[error("the order was just paid by payment {0}")]
    JustPaid(String),
    #[error("{0}")]
    NotCancelable(String),
    /// Not enough stock for the order's tracked lines: nothing is held, no checkout started.
    #[error("out of stock: {0}")]
    OutOfStock(String),
    /// The external inventory service did not answer: nothing was held; retry later.
    #[error("{0}")]
    InventoryUnavailable(String),
    #[error(transparent)]
    Provider(ProviderError),
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<sea_orm::DbErr> for PaymentError {
    fn from(e: sea_orm::DbErr) -> Self {
        PaymentError::Fault(e.into())
    }
}

impl From<crate::inventory::InventoryError> for PaymentError {
    fn from(e: crate::inventory::InventoryError) -> Self {
        use crate::inventory::InventoryError as E;
        match e {
            E::OutOfStock(shorts) => PaymentError::OutOfStock(crate::inventory::describe(&shorts)),
            E::Unavailable(why) => PaymentError::InventoryUnavailable(why),
            E::Fault(fault) => PaymentError::Fault(fault),
            other => {
                PaymentError::Fault(Fault::Internal(anyhow::anyhow!("holding stock: {other}")))
            }
        }
    }
}

impl From<ProviderError> for PaymentError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Db(e) => e.into(),
            other => PaymentError::Provider(other),
        }
    }
}

impl payments::Model {
    /// The payment as its provider sees it.
    pub fn provider_ref(&self) -> PaymentRef<'_> {
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

impl From<payments::Model> for PaymentOut {
    fn from(p: payments::Model) -> Self {
        PaymentOut {
            id: p.id,
            order_id: p.order_id,
            user_id: p.user_id,
            provider: p.provider,
            provider_reference: p.provider_reference,
            status: p.status.as_str().to_owned(),
            amount: p.amount,
            amount_refunded: p.amount_refunded,
            currency: p.currency,
            checkout_url: p.checkout_url,
            success_url: p.success_url,
            cancel_url: p.cancel_url,
            failure_reason: p.failure_reason,
            next_action: p
                .next_action
                .and_then(|action| serde_json::from_value(action).ok()),
            metadata: p.metadata,
            created_at: p.created_at,
            updated_at: p.updated_at,
            expires_at: p.expires_at,
        }
    }
}

/// Whether recording this state would leave the payment as it is: still pending, with the same
/// charge reference and the same action for the buyer.
pub fn changes_nothing(payment: &payments::Model, provider_state: &ProviderState) -> bool {
    let same_action = match (&provider_state.next_action, &payment.next_action) {
        (None, None) => true,
        (Some(new), Some(old)) => serde_json::to_value(new).is_ok_and(|new| &new == old),
        _ => false,
    };
    provider_state.status == ProviderStatus::Pending
        && same_action
        && (provider_state.payment_reference.is_none()
            || provider_state.payment_reference == payment.provider_payment_reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statuses_are_the_documented_ones() {
        assert_eq!(
            PaymentStatus::ALL.map(PaymentStatus::as_str),
            shared::api::PAYMENT_STATUSES
        );
    }
}
