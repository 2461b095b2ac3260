//! An order's statuses and the one table of the moves between them, with who may make each.
//!
//! ```text
//! pending ⇄ awaiting_payment → payment_failed → awaiting_payment (a retry)
//!   pending | awaiting_payment | payment_failed → paid | canceled | expired
//! paid → processing → shipped → delivered → completed
//! paid | processing → requires_action → processing
//! paid … completed, requires_action → refunded (a refund in full)
//! ```

use sea_orm::entity::prelude::*;

use crate::platform::Actor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::None)",
    rename_all = "snake_case"
)]
pub enum OrderStatus {
    Pending,
    AwaitingPayment,
    PaymentFailed,
    Paid,
    Processing,
    Shipped,
    Delivered,
    Completed,
    Canceled,
    Expired,
    Refunded,
    RequiresAction,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::AwaitingPayment => "awaiting_payment",
            OrderStatus::PaymentFailed => "payment_failed",
            OrderStatus::Paid => "paid",
            OrderStatus::Processing => "processing",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Completed => "completed",
            OrderStatus::Canceled => "canceled",
            OrderStatus::Expired => "expired",
            OrderStatus::Refunded => "refunded",
            OrderStatus::RequiresAction => "requires_action",
        }
    }

    pub const ALL: [OrderStatus; 12] = [
        Self::Pending,
        Self::AwaitingPayment,
        Self::PaymentFailed,
        Self::Paid,
        Self::Processing,
        Self::Shipped,
        Self::Delivered,
        Self::Completed,
        Self::Canceled,
        Self::Expired,
        Self::Refunded,
        Self::RequiresAction,
    ];

    /// Not paid yet and still payable: a checkout may start, a person may cancel, the sweep
    /// may expire.
    pub const OPEN: [OrderStatus; 3] = [Self::Pending, Self::AwaitingPayment, Self::PaymentFailed];

    /// Paid and not refunded: a refund in full moves these to `refunded`.
    pub const PAID: [OrderStatus; 6] = [
        Self::Paid,
        Self::Processing,
        Self::Shipped,
        Self::Delivered,
        Self::Completed,
        Self::RequiresAction,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }
}

crate::platform::status_text!(OrderStatus);

/// Who may make a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// This service, as payments and the clock move (a checkout, a payment's outcome, the
    /// expiry sweep, a refund).
    System,
    /// A service or an admin (fulfillment, and a step that needs a person).
    Staff,
    /// The order's owner as well as staff.
    OwnerOrStaff,
}

use OrderStatus as S;

/// Every move: from, to, who. Nothing else moves an order.
pub const TRANSITIONS: &[(OrderStatus, OrderStatus, By)] = &[
    (S::Pending, S::AwaitingPayment, By::System),
    (S::PaymentFailed, S::AwaitingPayment, By::System),
    (S::AwaitingPayment, S::Pending, By::System),
    (S::AwaitingPayment, S::PaymentFailed, By::System),
    (S::Pending, S::Paid, By::System),
    (S::AwaitingPayment, S::Paid, By::System),
    (S::PaymentFailed, S::Paid, By::System),
    (S::Pending, S::Canceled, By::OwnerOrStaff),
    (S::AwaitingPayment, S::Canceled, By::OwnerOrStaff),
    (S::PaymentFailed, S::Canceled, By::OwnerOrStaff),
    (S::Pending, S::Expired, By::System),
    (S::AwaitingPayment, S::Expired, By::System),
    (S::PaymentFailed, S::Expired, By::System),
    (S::Paid, S::Processing, By::Staff),
    (S::Paid, S::Shipped, By::Staff),
    (S::Processing, S::Shipped, By::Staff),
    (S::Shipped, S::Delivered, By::Staff),
    (S::Delivered, S::Completed, By::Staff),
    (S::Paid, S::RequiresAction, By::Staff),
    (S::Processing, S::RequiresAction, By::Staff),
    (S::RequiresAction, S::Processing, By::Staff),
    (S::Paid, S::Refunded, By::System),
    (S::Processing, S::Refunded, By::System),
    (S::Shipped, S::Refunded, By::System),
    (S::Delivered, S::Refunded, By::System),
    (S::Completed, S::Refunded, By::System),
    (S::RequiresAction, S::Refunded, By::System),
];

/// Whether `by` may move an order from `from` to `to`. The system may make every move (a
/// step it takes for a person, such as `requires_action`, included).
pub fn allowed(from: OrderStatus, to: OrderStatus, by: By) -> bool {
    TRANSITIONS.iter().any(|&(f, t, who)| {
        f == from
            && t == to
            && match by {
                By::System => true,
                By::Staff => matches!(who, By::Staff | By::OwnerOrStaff),
                By::OwnerOrStaff => who == By::OwnerOrStaff,
            }
    })
}

/// The statuses `by` may move an order from into `to`.
pub fn sources(to: OrderStatus, by: By) -> Vec<OrderStatus> {
    OrderStatus::ALL
        .into_iter()
        .filter(|&from| allowed(from, to, by))
        .collect()
}

/// Who moved an order, as its history says: `system`, or the role and user (`admin:alice`).
pub fn actor_label(actor: Option<&Actor>) -> String {
    match actor {
        None => "system".to_owned(),
        Some(actor) if actor.is_admin() => format!("admin:{}", actor.user_id),
        Some(actor) if actor.is_trusted() => format!("service:{}", actor.user_id),
        Some(actor) => format!("user:{}", actor.user_id),
    }
}

/// Who an actor is to the table: staff, or an order's owner.
pub fn by(actor: &Actor) -> By {
    if actor.is_trusted() {
        By::Staff
    } else {
        By::OwnerOrStaff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statuses_are_the_documented_ones() {
        assert_eq!(
            OrderStatus::ALL.map(OrderStatus::as_str),
            shared::api::ORDER_STATUSES
        );
    }

    #[test]
    fn ended_orders_never_move_but_a_paid_one_may_be_refunded() {
        for end in [S::Canceled, S::Expired, S::Refunded] {
            for to in OrderStatus::ALL {
                assert!(!allowed(end, to, By::System), "{end} → {to}");
            }
        }
        assert!(allowed(S::Completed, S::Refunded, By::System));
        assert!(!allowed(S::Completed, S::Refunded, By::Staff));
    }

    #[test]
    fn an_owner_may_only_cancel_before_payment() {
        for (from, to, _) in TRANSITIONS {
            let owner = allowed(*from, *to, By::OwnerOrStaff);
            assert_eq!(owner, *to == S::Canceled && from.is_open(), "{from} → {to}");
        }
        assert!(!allowed(S::Paid, S::Canceled, By::Staff));
        assert_eq!(sources(S::Canceled, By::OwnerOrStaff), OrderStatus::OPEN);
    }

    #[test]
    fn fulfillment_is_staff_work_in_order() {
        assert!(allowed(S::Paid, S::Processing, By::Staff));
        assert!(allowed(S::Processing, S::Shipped, By::Staff));
        assert!(!allowed(S::Processing, S::Delivered, By::Staff));
        assert!(!allowed(S::Shipped, S::Completed, By::Staff));
        assert!(!allowed(S::AwaitingPayment, S::Paid, By::Staff));
        assert_eq!(sources(S::Refunded, By::System), OrderStatus::PAID);
    }
}
