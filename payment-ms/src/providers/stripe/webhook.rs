//! Stripe's webhooks: verified, then read as the payment or refunds they say changed.

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::wire::{Charge, Event, PaymentIntent, Session};
use super::{StripeConfig, signature};
use crate::providers::{InboundError, InboundEvent, Subject};

fn body_error(e: serde_json::Error) -> InboundError {
    InboundError::Body(e.to_string())
}

pub(super) fn parse(
    config: &StripeConfig,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<InboundEvent, InboundError> {
    let secret = config
        .webhook_secret
        .as_ref()
        .ok_or(InboundError::NotConfigured)?;
    let header = headers.get(signature::HEADER).and_then(|v| v.to_str().ok());
    let tolerance = i64::try_from(config.webhook_tolerance.as_secs()).unwrap_or(300);
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
