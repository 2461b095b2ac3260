//! The catalogue: every event this service records, with the data it carries. Partners receive
//! these names and shapes (documented in the API); internal reactions and the outputs read
//! them typed from here.

use serde::Serialize;
use shared::api::{OrderOut, PartnerOut, PaymentOut, RefundOut};
use shared::billing::{InvoiceOut, SubscriptionOut};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    OrderCreated,
    OrderPaid,
    OrderCanceled,
    OrderExpired,
    OrderRefunded,
    Order(OrderChange),
    PaymentCreated,
    PaymentSucceeded,
    PaymentFailed,
    PaymentCanceled,
    PaymentExpired,
    PaymentRefunded,
    PartnerDisabled,
    Subscription(SubscriptionChange),
    Invoice(InvoiceChange),
}

/// What else happened to an order: an edit, or a move of its lifecycle besides its creation,
/// payment and end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderChange {
    /// Its lines, discount, shipping or addresses changed, or a checkout ended unpaid and it
    /// is `pending` (editable) again.
    Updated,
    PaymentPending,
    PaymentFailed,
    Processing,
    /// Shipped.
    Fulfilled,
    Delivered,
    Completed,
    RequiresAction,
}

/// What happened to a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionChange {
    Created,
    Updated,
    TrialEnding,
    PastDue,
    Paused,
    Resumed,
    Canceled,
}

/// What happened to an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceChange {
    Created,
    Finalized,
    Paid,
    PaymentFailed,
    Voided,
    MarkedUncollectible,
}

impl EventType {
    pub const ALL: [EventType; 33] = [
        Self::OrderCreated,
        Self::OrderPaid,
        Self::OrderCanceled,
        Self::OrderExpired,
        Self::OrderRefunded,
        Self::Order(OrderChange::Updated),
        Self::Order(OrderChange::PaymentPending),
        Self::Order(OrderChange::PaymentFailed),
        Self::Order(OrderChange::Processing),
        Self::Order(OrderChange::Fulfilled),
        Self::Order(OrderChange::Delivered),
        Self::Order(OrderChange::Completed),
        Self::Order(OrderChange::RequiresAction),
        Self::PaymentCreated,
        Self::PaymentSucceeded,
        Self::PaymentFailed,
        Self::PaymentCanceled,
        Self::PaymentExpired,
        Self::PaymentRefunded,
        Self::PartnerDisabled,
        Self::Subscription(SubscriptionChange::Created),
        Self::Subscription(SubscriptionChange::Updated),
        Self::Subscription(SubscriptionChange::TrialEnding),
        Self::Subscription(SubscriptionChange::PastDue),
        Self::Subscription(SubscriptionChange::Paused),
        Self::Subscription(SubscriptionChange::Resumed),
        Self::Subscription(SubscriptionChange::Canceled),
        Self::Invoice(InvoiceChange::Created),
        Self::Invoice(InvoiceChange::Finalized),
        Self::Invoice(InvoiceChange::Paid),
        Self::Invoice(InvoiceChange::PaymentFailed),
        Self::Invoice(InvoiceChange::Voided),
        Self::Invoice(InvoiceChange::MarkedUncollectible),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::OrderCreated => "order.created",
            EventType::OrderPaid => "order.paid",
            EventType::OrderCanceled => "order.canceled",
            EventType::OrderExpired => "order.expired",
            EventType::OrderRefunded => "order.refunded",
            EventType::Order(change) => match change {
                OrderChange::Updated => "order.updated",
                OrderChange::PaymentPending => "order.payment_pending",
                OrderChange::PaymentFailed => "order.payment_failed",
                OrderChange::Processing => "order.processing",
                OrderChange::Fulfilled => "order.fulfilled",
                OrderChange::Delivered => "order.delivered",
                OrderChange::Completed => "order.completed",
                OrderChange::RequiresAction => "order.requires_action",
            },
            EventType::PaymentCreated => "payment.created",
            EventType::PaymentSucceeded => "payment.succeeded",
            EventType::PaymentFailed => "payment.failed",
            EventType::PaymentCanceled => "payment.canceled",
            EventType::PaymentExpired => "payment.expired",
            EventType::PaymentRefunded => "payment.refunded",
            EventType::PartnerDisabled => "partner.disabled",
            EventType::Subscription(change) => match change {
                SubscriptionChange::Created => "subscription.created",
                SubscriptionChange::Updated => "subscription.updated",
                SubscriptionChange::TrialEnding => "subscription.trial_ending",
                SubscriptionChange::PastDue => "subscription.past_due",
                SubscriptionChange::Paused => "subscription.paused",
                SubscriptionChange::Resumed => "subscription.resumed",
                SubscriptionChange::Canceled => "subscription.canceled",
            },
            EventType::Invoice(change) => match change {
                InvoiceChange::Created => "invoice.created",
                InvoiceChange::Finalized => "invoice.finalized",
                InvoiceChange::Paid => "invoice.paid",
                InvoiceChange::PaymentFailed => "invoice.payment_failed",
                InvoiceChange::Voided => "invoice.voided",
                InvoiceChange::MarkedUncollectible => "invoice.marked_uncollectible",
            },
        }
    }
}

/// One event with its data: the subject as it is after the change.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    OrderCreated(&'a OrderOut),
    OrderPaid(&'a OrderOut),
    OrderCanceled(&'a OrderOut),
    OrderExpired(&'a OrderOut),
    OrderRefunded(&'a OrderOut),
    Order(OrderChange, &'a OrderOut),
    PaymentCreated(&'a PaymentOut),
    PaymentSucceeded(&'a PaymentOut),
    PaymentFailed(&'a PaymentOut),
    PaymentCanceled(&'a PaymentOut),
    PaymentExpired(&'a PaymentOut),
    /// The payment as it now is, and the refund that moved it.
    PaymentRefunded(&'a PaymentOut, &'a RefundOut),
    PartnerDisabled(&'a PartnerOut),
    Subscription(SubscriptionChange, &'a SubscriptionOut),
    Invoice(InvoiceChange, &'a InvoiceOut),
}

/// `payment.refunded`'s data: the payment's fields, and the refund under `refund`.
#[derive(Serialize)]
struct PaymentRefunded<'a> {
    #[serde(flatten)]
    payment: &'a PaymentOut,
    refund: &'a RefundOut,
}

impl Event<'_> {
    pub fn event_type(&self) -> EventType {
        match self {
            Event::OrderCreated(_) => EventType::OrderCreated,
            Event::OrderPaid(_) => EventType::OrderPaid,
            Event::OrderCanceled(_) => EventType::OrderCanceled,
            Event::OrderExpired(_) => EventType::OrderExpired,
            Event::OrderRefunded(_) => EventType::OrderRefunded,
            Event::Order(change, _) => EventType::Order(*change),
            Event::PaymentCreated(_) => EventType::PaymentCreated,
            Event::PaymentSucceeded(_) => EventType::PaymentSucceeded,
            Event::PaymentFailed(_) => EventType::PaymentFailed,
            Event::PaymentCanceled(_) => EventType::PaymentCanceled,
            Event::PaymentExpired(_) => EventType::PaymentExpired,
            Event::PaymentRefunded(..) => EventType::PaymentRefunded,
            Event::PartnerDisabled(_) => EventType::PartnerDisabled,
            Event::Subscription(change, _) => EventType::Subscription(*change),
            Event::Invoice(change, _) => EventType::Invoice(*change),
        }
    }

    /// Whether this event is the first its subject has (its creation): its sequence is 1
    /// without asking the database.
    pub fn opens_subject(&self) -> bool {
        matches!(
            self,
            Event::OrderCreated(_)
                | Event::PaymentCreated(_)
                | Event::Subscription(SubscriptionChange::Created, _)
                | Event::Invoice(InvoiceChange::Created, _)
        )
    }

    /// The id of what the event is about.
    pub fn subject_id(&self) -> &str {
        match self {
            Event::OrderCreated(o)
            | Event::OrderPaid(o)
            | Event::OrderCanceled(o)
            | Event::OrderExpired(o)
            | Event::OrderRefunded(o)
            | Event::Order(_, o) => &o.id,
            Event::PaymentCreated(p)
            | Event::PaymentSucceeded(p)
            | Event::PaymentFailed(p)
            | Event::PaymentCanceled(p)
            | Event::PaymentExpired(p)
            | Event::PaymentRefunded(p, _) => &p.id,
            Event::PartnerDisabled(p) => &p.id,
            Event::Subscription(_, s) => &s.id,
            Event::Invoice(_, i) => &i.id,
        }
    }

    /// The data partners receive, as JSON text (written as it is: no tree of values built,
    /// copied and dropped on the way to the database).
    pub fn data(&self) -> Result<String, serde_json::Error> {
        match self {
            Event::OrderCreated(o)
            | Event::OrderPaid(o)
            | Event::OrderCanceled(o)
            | Event::OrderExpired(o)
            | Event::OrderRefunded(o)
            | Event::Order(_, o) => serde_json::to_string(o),
            Event::PaymentCreated(p)
            | Event::PaymentSucceeded(p)
            | Event::PaymentFailed(p)
            | Event::PaymentCanceled(p)
            | Event::PaymentExpired(p) => serde_json::to_string(p),
            Event::PaymentRefunded(payment, refund) => {
                serde_json::to_string(&PaymentRefunded { payment, refund })
            }
            Event::PartnerDisabled(p) => serde_json::to_string(p),
            Event::Subscription(_, s) => serde_json::to_string(s),
            Event::Invoice(_, i) => serde_json::to_string(i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_the_documented_one() {
        assert_eq!(
            EventType::ALL.map(EventType::as_str).as_slice(),
            shared::api::EVENT_TYPES
        );
    }
}
