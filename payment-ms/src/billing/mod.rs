//! Billing: plans, subscriptions and their invoices, moved by jobs on the billing clock.
//!
//! A subscription's periods come from its anchor (`periods`); each period is billed once (a
//! `billed_periods` row inserted with its invoice); an invoice is numbered when finalized (a
//! counter row in the same transaction: gapless) and paid through an order of its own, so the
//! checkout, the providers, refunds and the events that pay orders pay invoices too.
//!
//! Publishes `subscription.*` and `invoice.*`; reacts to `order.paid` (an invoice's order).

use std::sync::Arc;
use std::time::Duration;

use shared::config::{ConfigError, Env, Profile};
use tokio::sync::Notify;
use url::Url;

use crate::payments::service::Payments;
use crate::platform::Core;
use crate::refunds::service::Refunds;

pub mod bill_run;
pub mod clocks;
pub mod documents;
pub mod entities;
pub mod figures;
pub mod inbound;
pub mod invoices;
pub mod job_rows;
pub mod jobs;
pub mod model;
pub mod periods;
pub mod plans;
pub mod reactions;
pub mod refunds;
pub mod routes;
pub mod store;
pub mod subscriptions;
pub mod totals;

/// What a subscription does when the last retry of an invoice fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DunningEnd {
    /// The subscription is canceled and the invoice marked uncollectible.
    Cancel,
    /// The subscription is kept as `unpaid` (no new invoices); the invoice stays open.
    Unpaid,
    /// Nothing more happens: the subscription stays `past_due`, the invoice open.
    PastDue,
}

#[derive(Debug, Clone)]
pub struct BillingConfig {
    /// `BILLING_JOBS_ENABLED`: whether this replica runs the billing jobs.
    pub jobs_enabled: bool,
    /// `BILLING_POLL_INTERVAL`: how often due jobs are looked for (new ones wake the runner).
    pub poll_interval: Duration,
    /// `BILLING_CONCURRENCY`: jobs a replica runs at once (PostgreSQL; SQLite runs one at a
    /// time, as it writes one transaction at a time).
    pub concurrency: usize,
    /// `BILLING_FINALIZE_GRACE`: how long a renewal's draft waits before it is finalized.
    pub finalize_grace: Duration,
    /// `BILLING_INCOMPLETE_TTL`: how long a first invoice may stay unpaid.
    pub incomplete_ttl: Duration,
    /// `BILLING_TRIAL_ENDING_NOTICE`: how long before a trial's end `subscription.trial_ending`.
    pub trial_notice: Duration,
    /// `BILLING_RETRY_SCHEDULE`: after a failed charge, the retries, counted from the first
    /// failure.
    pub retry_schedule: Vec<Duration>,
    /// `BILLING_DUNNING_END`: `cancel`, `unpaid` or `past_due`.
    pub dunning_end: DunningEnd,
    /// `BILLING_INVOICE_PREFIX`: the numbers' prefix.
    pub invoice_prefix: String,
    /// `BILLING_NUMBER_SCOPE`: `year` (a sequence per calendar year, UTC) or `global`.
    pub number_per_year: bool,
    /// `BILLING_TEST_CLOCKS`: whether admins may use test clocks (on in the dev profile).
    pub test_clocks: bool,
    /// `BILLING_ISSUER`: who issues the invoices, as their documents say it, a line each
    /// (separated by `;` in the variable: `Acme Ltd; 1 Main Street; London`).
    pub issuer: Vec<String>,
}

impl BillingConfig {
    pub fn from_source(env: &Env, profile: Profile) -> Result<BillingConfig, ConfigError> {
        let dunning_end = match env.string("BILLING_DUNNING_END", "cancel").as_str() {
            "cancel" => DunningEnd::Cancel,
            "unpaid" => DunningEnd::Unpaid,
            "past_due" => DunningEnd::PastDue,
            _ => {
                return Err(ConfigError::invalid(
                    "BILLING_DUNNING_END",
                    "must be one of cancel, unpaid, past_due",
                ));
            }
        };
        let retry_schedule = env.durations("BILLING_RETRY_SCHEDULE", "5d,12d,21d")?;
        if retry_schedule.windows(2).any(|w| w[0] >= w[1]) || retry_schedule.len() > 20 {
            return Err(ConfigError::invalid(
                "BILLING_RETRY_SCHEDULE",
                "must be at most 20 rising delays from the first failure, e.g. 5d,12d,21d",
            ));
        }
        let invoice_prefix = env.string("BILLING_INVOICE_PREFIX", "INV");
        if invoice_prefix.is_empty()
            || invoice_prefix.len() > 20
            || !invoice_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ConfigError::invalid(
                "BILLING_INVOICE_PREFIX",
                "must be 1 to 20 letters, digits or `-`",
            ));
        }
        let number_per_year = match env.string("BILLING_NUMBER_SCOPE", "year").as_str() {
            "year" => true,
            "global" => false,
            _ => {
                return Err(ConfigError::invalid(
                    "BILLING_NUMBER_SCOPE",
                    "must be year or global",
                ));
            }
        };
        let issuer: Vec<String> = env
            .string("BILLING_ISSUER", "")
            .split(';')
            .map(|line| line.trim().to_owned())
            .filter(|line| !line.is_empty())
            .collect();
        if issuer.len() > 8 || issuer.iter().any(|line| line.chars().count() > 100) {
            return Err(ConfigError::invalid(
                "BILLING_ISSUER",
                "must be at most 8 lines (separated by ;) of at most 100 characters",
            ));
        }
        Ok(BillingConfig {
            issuer,
            jobs_enabled: env.parse("BILLING_JOBS_ENABLED", "true")?,
            poll_interval: env.duration("BILLING_POLL_INTERVAL", "5s")?,
            concurrency: match env.parse::<usize>("BILLING_CONCURRENCY", "8")? {
                n @ 1..=64 => n,
                _ => {
                    return Err(ConfigError::invalid(
                        "BILLING_CONCURRENCY",
                        "must be 1 to 64",
                    ));
                }
            },
            finalize_grace: env.duration("BILLING_FINALIZE_GRACE", "1h")?,
            incomplete_ttl: env.duration("BILLING_INCOMPLETE_TTL", "23h")?,
            trial_notice: env.duration("BILLING_TRIAL_ENDING_NOTICE", "3d")?,
            retry_schedule,
            dunning_end,
            invoice_prefix,
            number_per_year,
            test_clocks: env.parse(
                "BILLING_TEST_CLOCKS",
                if profile == Profile::Dev {
                    "true"
                } else {
                    "false"
                },
            )?,
        })
    }
}

/// The billing context with what it needs: the platform, the payments that charge invoices
/// and close their checkouts, and where a server-side charge says the buyer returns.
#[derive(Clone)]
pub struct Billing {
    pub core: Core,
    pub payments: Payments,
    /// Refunds the unused part of a period canceled early.
    pub refunds: Refunds,
    pub config: Arc<BillingConfig>,
    pub public_base_url: Url,
    /// Wakes this replica's job runner when jobs are due now.
    pub due: Arc<Notify>,
}
