//! The billing API's bodies: plans, subscriptions, invoices and test clocks. Amounts are
//! integer minor units of the plan's or invoice's currency.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::rules;

/// Every subscription status.
pub const SUBSCRIPTION_STATUSES: [&str; 8] = [
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "paused",
    "canceled",
    "unpaid",
];
/// Every invoice status.
pub const INVOICE_STATUSES: [&str; 5] = ["draft", "open", "paid", "void", "uncollectible"];
/// Every billing interval.
pub const INTERVALS: [&str; 4] = ["day", "week", "month", "year"];

fn one_of(values: &'static [&'static str]) -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
}

fn interval() -> utoipa::openapi::schema::Schema {
    one_of(&INTERVALS).into()
}

/// What a plan's `code` may be.
pub const PLAN_CODE_PATTERN: &str = "^[a-z0-9][a-z0-9_.-]{0,63}$";

pub fn plan_code() -> utoipa::openapi::schema::Schema {
    rules::string(PLAN_CODE_PATTERN).into()
}

/// Creates a plan, or a new version of the plan with this `code` (the versions in use stay as
/// they are). Admin or service.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanIn {
    /// Lower-case letters, digits, `_`, `.` and `-`; the same code makes a new version.
    #[schema(schema_with = plan_code, example = "pro")]
    pub code: String,
    #[schema(schema_with = rules::text_255, example = "Pro")]
    pub name: String,
    /// A label for grouping plans (`basic`, `pro`, `enterprise`).
    #[serde(default)]
    #[schema(schema_with = rules::text_255_or_null, example = "pro")]
    pub tier: Option<String>,
    #[schema(schema_with = rules::currency)]
    pub currency: String,
    #[schema(schema_with = interval)]
    pub interval: String,
    /// Intervals per period (`3` with `month` is quarterly); 1 when absent.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1095, example = 1)]
    pub interval_count: Option<i64>,
    /// Billed in advance for each period, in minor units; 0 for a free plan.
    #[schema(minimum = 0, maximum = 99_999_999_999_i64, example = 2900)]
    pub amount: i64,
    /// Days of trial before the first paid period; 0 when absent.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 730, example = 14)]
    pub trial_days: Option<i64>,
    #[serde(default)]
    #[schema(schema_with = rules::metadata_or_null)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct PlanOut {
    #[schema(example = "plan_019a8e0c2d4b7a1c9e3f5a7b9c1d3e5f")]
    pub id: String,
    #[schema(example = "pro")]
    pub code: String,
    /// 1 for the first plan with this code, then 2, 3, …
    #[schema(example = 1)]
    pub version: i32,
    pub name: String,
    pub tier: Option<String>,
    #[schema(example = "usd")]
    pub currency: String,
    #[schema(example = "month")]
    pub interval: String,
    pub interval_count: i32,
    #[schema(example = 2900)]
    pub amount: i64,
    pub trial_days: i32,
    /// `active` or `archived` (no new subscriptions; existing ones go on).
    #[schema(example = "active")]
    pub status: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
}

/// Subscribes a user to a plan. A user subscribes themself (`user_id` absent or their own); a
/// service or admin may name any user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionIn {
    /// A plan id (that exact version), or a plan code (its newest active version).
    #[schema(schema_with = rules::text_255, example = "pro")]
    pub plan: String,
    #[serde(default)]
    #[schema(schema_with = rules::text_255_or_null, example = "user_demo")]
    pub user_id: Option<String>,
    /// The IANA time zone the periods are computed in; `UTC` when absent.
    #[serde(default)]
    #[schema(schema_with = rules::text_255_or_null, example = "Europe/Paris")]
    pub time_zone: Option<String>,
    /// A saved payment method at the provider, charged automatically for each invoice
    /// (Stripe `pm_…`; with the mock provider `pm_mock_ok` or `pm_mock_declined`). Without
    /// one, each invoice is paid through its checkout.
    #[serde(default)]
    #[schema(schema_with = rules::token_or_null, example = "pm_mock_ok")]
    pub payment_method: Option<String>,
    /// Overrides the plan's trial (0: no trial).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 730)]
    pub trial_days: Option<i64>,
    /// Admin only, with test clocks enabled: the clock this subscription lives on.
    #[serde(default)]
    #[schema(schema_with = rules::text_255_or_null)]
    pub test_clock: Option<String>,
    #[serde(default)]
    #[schema(schema_with = rules::metadata_or_null)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct SubscriptionOut {
    #[schema(example = "sub_019a8e0c2d4b7a1c9e3f5a7b9c1d3e5f")]
    pub id: String,
    pub user_id: String,
    /// `incomplete`, `incomplete_expired`, `trialing`, `active`, `past_due`, `paused`,
    /// `canceled` or `unpaid`.
    #[schema(example = "active")]
    pub status: String,
    pub plan: PlanOut,
    /// The plan that takes over at the period's end (a downgrade).
    pub pending_plan_id: Option<String>,
    pub time_zone: String,
    /// Where every period boundary is computed from.
    pub billing_anchor: DateTime<Utc>,
    pub current_period_start: DateTime<Utc>,
    pub current_period_end: DateTime<Utc>,
    pub trial_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub cancellation_reason: Option<String>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub paused_at: Option<DateTime<Utc>>,
    pub has_payment_method: bool,
    pub test_clock: Option<String>,
    /// The invoice waiting to be paid, if any (the first one of an `incomplete` subscription).
    pub latest_invoice_id: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Cancels a subscription: at once (the unused part of a paid period is refunded) or at the
/// period's end.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelSubscriptionIn {
    /// `true`: it stays active until the period ends, then ends. `false` (default): now.
    #[serde(default)]
    pub at_period_end: bool,
    #[serde(default)]
    #[schema(schema_with = rules::text_500_or_null, example = "too expensive")]
    pub reason: Option<String>,
}

/// The saved payment method a subscription's invoices are charged to from now on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethodIn {
    /// The provider's saved payment method (`pm_…`; the mock provider's are `pm_mock_ok` and
    /// `pm_mock_declined`).
    #[schema(schema_with = rules::token, example = "pm_mock_ok")]
    pub payment_method: String,
}

/// Moves a subscription to another plan of the same currency.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlanIn {
    /// A plan id or code, as when subscribing.
    #[schema(schema_with = rules::text_255, example = "business")]
    pub plan: String,
    /// `now`: apply at once with a prorated credit and charge (an upgrade's default);
    /// `period_end`: at the period's end (a downgrade's default, and the only choice for a
    /// downgrade or a change of interval).
    #[serde(default)]
    #[schema(schema_with = proration_or_null)]
    pub proration: Option<String>,
}

fn proration_or_null() -> utoipa::openapi::schema::Schema {
    rules::or_null(one_of(&["now", "period_end"]))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct InvoiceLineOut {
    /// `recurring`, `proration_credit`, `proration_charge` or `adjustment`.
    #[schema(example = "recurring")]
    pub kind: String,
    pub description: String,
    pub plan_id: Option<String>,
    pub quantity: i32,
    pub unit_amount: i64,
    /// Negative for a credit.
    pub amount: i64,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct InvoiceOut {
    #[schema(example = "inv_019a8e0c2d4b7a1c9e3f5a7b9c1d3e5f")]
    pub id: String,
    /// Given at finalization, gapless per scope (`INV-2027-000042`); none while a draft.
    pub number: Option<String>,
    pub subscription_id: Option<String>,
    pub user_id: String,
    /// `draft`, `open`, `paid`, `void` or `uncollectible`.
    #[schema(example = "open")]
    pub status: String,
    #[schema(example = "usd")]
    pub currency: String,
    /// The sum of the lines.
    pub total: i64,
    pub amount_paid: i64,
    /// `amount_due` is `total − amount_paid` while open.
    pub amount_due: i64,
    /// `subscription_create`, `subscription_cycle` or `subscription_update`.
    pub billing_reason: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub lines: Vec<InvoiceLineOut>,
    /// The order that pays it: `POST /orders/{order_id}/checkout` opens its checkout.
    pub order_id: Option<String>,
    pub attempt_count: i32,
    pub next_payment_attempt: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub finalized_at: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
}

/// A test clock: subscriptions attached to it live on its time, which moves only when
/// advanced.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestClockIn {
    /// Where the clock starts; now when absent.
    #[serde(default)]
    pub frozen_time: Option<DateTime<Utc>>,
    #[serde(default)]
    #[schema(schema_with = rules::text_255_or_null, example = "a year of pro")]
    pub name: Option<String>,
}

/// Moves a test clock forward; everything due in between runs in order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceClockIn {
    pub frozen_time: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct TestClockOut {
    #[schema(example = "clk_019a8e0c2d4b7a1c9e3f5a7b9c1d3e5f")]
    pub id: String,
    pub name: String,
    pub frozen_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// Jobs run by the last advance.
    pub jobs_run: u64,
}
