//! A refund: its states, its public view, the checks on a request, and what can go wrong.

use sea_orm::entity::prelude::*;
use shared::FieldError;
use shared::api::{RefundIn, RefundOut};

use super::entities::refunds;
use crate::payments::model::{PaymentError, PaymentStatus};
use crate::platform::{Fault, validate};
use crate::providers::ProviderError;

pub const MAX_REASON_LEN: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::None)",
    rename_all = "snake_case"
)]
pub enum RefundState {
    Pending,
    Succeeded,
    Failed,
}

impl RefundState {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundState::Pending => "pending",
            RefundState::Succeeded => "succeeded",
            RefundState::Failed => "failed",
        }
    }
}

crate::platform::status_text!(RefundState);

/// Why a refund use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The payment to refund could not be read (not found, not visible).
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error("the payment is {0}; only a succeeded payment can be refunded")]
    NotRefundable(PaymentStatus),
    #[error("nothing remains to refund")]
    FullyRefunded,
    #[error("at most {remaining} can still be refunded; {asked} was asked")]
    ExceedsRemaining { remaining: i64, asked: i64 },
    /// The provider refused the refund; it is recorded as failed.
    #[error("the provider refused refund {refund_id}: {message} ({code})")]
    Refused {
        refund_id: String,
        code: String,
        message: String,
    },
    /// The provider did not answer: the refund stays pending, holding its amount.
    #[error("refund {0} is pending: the provider did not answer")]
    OutcomeUnknown(String),
    #[error(transparent)]
    Provider(ProviderError),
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<sea_orm::DbErr> for RefundError {
    fn from(e: sea_orm::DbErr) -> Self {
        RefundError::Fault(e.into())
    }
}

impl From<ProviderError> for RefundError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Db(e) => e.into(),
            other => RefundError::Provider(other),
        }
    }
}

impl From<refunds::Model> for RefundOut {
    fn from(r: refunds::Model) -> Self {
        RefundOut {
            id: r.id,
            payment_id: r.payment_id,
            order_id: r.order_id,
            provider: r.provider,
            provider_reference: r.provider_reference,
            amount: r.amount,
            currency: r.currency,
            status: r.status.as_str().to_owned(),
            reason: r.reason,
            failure_reason: r.failure_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

pub fn check(input: &RefundIn) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if let Some(amount) = input.amount
        && !(1..=shared::money::MAX_AMOUNT).contains(&amount)
    {
        errors.push(FieldError::new(
            "amount",
            format!(
                "must be between 1 and {} (minor units)",
                shared::money::MAX_AMOUNT
            ),
        ));
    }
    if let Some(reason) = &input.reason {
        validate::text(&mut errors, "reason", reason, MAX_REASON_LEN);
    }
    validate::finish(errors)
}
