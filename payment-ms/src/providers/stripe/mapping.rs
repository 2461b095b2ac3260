//! Stripe's objects read as provider states: a session's or a PaymentIntent's status, a refund.

use shared::api::NextAction;

use super::wire::{PaymentIntent, Refund, Session};
use crate::providers::{
    ProviderError, ProviderRefund, ProviderState, ProviderStatus, RefundStatus,
};

/// A paid amount that is not ours is never recorded as our payment.
pub(super) fn check_amount(
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

pub(super) fn session_state(
    session: &Session,
    amount: i64,
) -> Result<ProviderState, ProviderError> {
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

pub(super) fn intent_state(
    intent: &PaymentIntent,
    amount: i64,
) -> Result<ProviderState, ProviderError> {
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

pub(super) fn refund_of(refund: Refund) -> ProviderRefund {
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
