//! Money back when a paid period ends early: the unused part of each invoice that paid for
//! it, refunded on the payment that paid that invoice, once per invoice (the refund's
//! idempotency key).

use shared::api::RefundIn;

use super::Billing;

/// Refunds `amount` of what paid `order_id`. A refund that fails is logged for an operator to
/// make by hand: the cancellation itself stands.
pub async fn refund_unused(billing: &Billing, invoice_id: &str, order_id: &str, amount: i64) {
    let payment_id = match billing.refunds.payments.paid_of_order(order_id).await {
        Ok(Some(id)) => id,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, invoice_id, "could not find the payment to refund");
            return;
        }
    };
    let input = RefundIn {
        amount: Some(amount),
        reason: Some("subscription canceled: unused time".to_owned()),
    };
    let key = format!("billing:unused:{invoice_id}");
    match billing
        .refunds
        .refund_as_system("billing", payment_id, input, key)
        .await
    {
        Ok(refund) => {
            tracing::info!(invoice_id, refund_id = %refund.id, amount, "refunded the unused part of the period")
        }
        Err(e) => {
            tracing::warn!(error = %e, invoice_id, amount, "could not refund the unused part of the period; refund it by hand")
        }
    }
}
