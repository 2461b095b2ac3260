//! Billing's types: the statuses and their rules, the public views, and what can go wrong.

use sea_orm::entity::prelude::*;
use shared::FieldError;
use shared::billing::{InvoiceLineOut, InvoiceOut, PlanOut, SubscriptionOut};

use super::entities::{invoice_lines, invoices, plans, subscriptions};
use super::periods::{Cadence, Interval, Schedule, zone};
use crate::platform::Fault;

crate::platform::typed_id!(
    /// A plan version's id.
    PlanId,
    shared::ids::PLAN
);
crate::platform::typed_id!(
    /// A subscription's id.
    SubscriptionId,
    shared::ids::SUBSCRIPTION
);
crate::platform::typed_id!(
    /// An invoice's id.
    InvoiceId,
    shared::ids::INVOICE
);
crate::platform::typed_id!(
    /// A test clock's id.
    TestClockId,
    shared::ids::TEST_CLOCK
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::None)",
    rename_all = "snake_case"
)]
pub enum PlanStatus {
    Active,
    Archived,
}

impl PlanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Active => "active",
            PlanStatus::Archived => "archived",
        }
    }
}

crate::platform::status_text!(PlanStatus);

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::None)",
    rename_all = "snake_case"
)]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Paused,
    Canceled,
    Unpaid,
}

impl SubscriptionStatus {
    pub const ALL: [SubscriptionStatus; 8] = [
        Self::Incomplete,
        Self::IncompleteExpired,
        Self::Trialing,
        Self::Active,
        Self::PastDue,
        Self::Paused,
        Self::Canceled,
        Self::Unpaid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Paused => "paused",
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the subscription has ended for good: nothing is billed or changed any more.
    pub fn is_ended(self) -> bool {
        matches!(self, Self::Canceled | Self::IncompleteExpired)
    }
}

crate::platform::status_text!(SubscriptionStatus);

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(StringLen::None)",
    rename_all = "snake_case"
)]
pub enum InvoiceStatus {
    Draft,
    Open,
    Paid,
    Void,
    Uncollectible,
}

impl InvoiceStatus {
    pub const ALL: [InvoiceStatus; 5] = [
        Self::Draft,
        Self::Open,
        Self::Paid,
        Self::Void,
        Self::Uncollectible,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Void => "void",
            Self::Uncollectible => "uncollectible",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

crate::platform::status_text!(InvoiceStatus);

/// Why a billing use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// No such thing, or not one the actor may see.
    #[error("{0} not found")]
    NotFound(String),
    /// The actor may see it but not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Not in a state that allows it: a stable code and a sentence.
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<DbErr> for BillingError {
    fn from(e: DbErr) -> Self {
        BillingError::Fault(e.into())
    }
}

impl BillingError {
    pub fn invalid(field: &str, why: impl Into<String>) -> BillingError {
        BillingError::Invalid(vec![FieldError::new(field, why.into())])
    }
}

/// A plan's cadence, as stored.
pub fn cadence(plan: &plans::Model) -> Cadence {
    Cadence {
        interval: Interval::parse(&plan.interval).unwrap_or(Interval::Month),
        count: u32::try_from(plan.interval_count).unwrap_or(1).max(1),
    }
}

/// A subscription's period schedule under `plan`.
pub fn schedule(sub: &subscriptions::Model, plan: &plans::Model) -> Schedule {
    Schedule {
        anchor: sub.billing_anchor,
        zone: zone(&sub.time_zone).unwrap_or(chrono_tz::UTC),
        cadence: cadence(plan),
    }
}

pub fn plan_out(plan: plans::Model) -> PlanOut {
    PlanOut {
        id: plan.id,
        code: plan.code,
        version: plan.version,
        name: plan.name,
        tier: plan.tier,
        currency: plan.currency,
        interval: plan.interval,
        interval_count: plan.interval_count,
        amount: plan.amount,
        trial_days: plan.trial_days,
        status: plan.status.as_str().to_owned(),
        metadata: plan.metadata,
        created_at: plan.created_at,
        archived_at: plan.archived_at,
    }
}

pub fn subscription_out(
    sub: subscriptions::Model,
    plan: plans::Model,
    latest_invoice_id: Option<String>,
) -> SubscriptionOut {
    SubscriptionOut {
        id: sub.id,
        user_id: sub.user_id,
        status: sub.status.as_str().to_owned(),
        plan: plan_out(plan),
        pending_plan_id: sub.pending_plan_id,
        time_zone: sub.time_zone,
        billing_anchor: sub.billing_anchor,
        current_period_start: sub.current_period_start,
        current_period_end: sub.current_period_end,
        trial_end: sub.trial_end,
        cancel_at_period_end: sub.cancel_at_period_end,
        cancellation_reason: sub.cancellation_reason,
        canceled_at: sub.canceled_at,
        ended_at: sub.ended_at,
        paused_at: sub.paused_at,
        has_payment_method: sub.payment_method.is_some(),
        test_clock: sub.test_clock_id,
        latest_invoice_id,
        metadata: sub.metadata,
        created_at: sub.created_at,
        updated_at: sub.updated_at,
    }
}

pub fn invoice_out(invoice: invoices::Model, lines: Vec<invoice_lines::Model>) -> InvoiceOut {
    let amount_due = match invoice.status {
        InvoiceStatus::Draft | InvoiceStatus::Open => (invoice.total - invoice.amount_paid).max(0),
        _ => 0,
    };
    InvoiceOut {
        id: invoice.id,
        number: invoice.number,
        subscription_id: invoice.subscription_id,
        user_id: invoice.user_id,
        status: invoice.status.as_str().to_owned(),
        currency: invoice.currency,
        total: invoice.total,
        amount_paid: invoice.amount_paid,
        amount_due,
        billing_reason: invoice.billing_reason,
        period_start: invoice.period_start,
        period_end: invoice.period_end,
        lines: lines
            .into_iter()
            .map(|l| InvoiceLineOut {
                kind: l.kind,
                description: l.description,
                plan_id: l.plan_id,
                quantity: l.quantity,
                unit_amount: l.unit_amount,
                amount: l.amount,
                period_start: l.period_start,
                period_end: l.period_end,
            })
            .collect(),
        order_id: invoice.order_id,
        attempt_count: invoice.attempt_count,
        next_payment_attempt: invoice.next_attempt_at,
        created_at: invoice.created_at,
        finalized_at: invoice.finalized_at,
        paid_at: invoice.paid_at,
        voided_at: invoice.voided_at,
    }
}
