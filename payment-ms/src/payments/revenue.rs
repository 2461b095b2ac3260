//! Revenue per UTC day and currency (`revenue_days`), added to in the transaction that
//! settles a payment or a refund, so the revenue figures read a few rows per day rather than
//! every payment.
//!
//! Each PostgreSQL connection adds to a row of its own (`platform::db::add_totals`): two
//! transactions settling payments on the same day wait for each other's commit on one total
//! only when their connections share a shard. The figures add a day's rows up.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use crate::platform::db::{add_totals, utc_day};

/// What one payment or refund adds to its day.
#[derive(Debug, Clone, Copy)]
pub struct Move<'a> {
    pub at: DateTime<Utc>,
    pub currency: &'a str,
    pub gross: i64,
    pub refunded: i64,
    pub payments: i64,
}

impl<'a> Move<'a> {
    /// A payment that succeeded at `at`.
    pub fn paid(at: DateTime<Utc>, currency: &'a str, amount: i64) -> Self {
        Self {
            at,
            currency,
            gross: amount,
            refunded: 0,
            payments: 1,
        }
    }

    /// A refund that settled at `at`.
    pub fn refunded(at: DateTime<Utc>, currency: &'a str, amount: i64) -> Self {
        Self {
            at,
            currency,
            gross: 0,
            refunded: amount,
            payments: 0,
        }
    }
}

/// Adds `moves` to their days, one statement.
pub async fn count<C: ConnectionTrait>(db: &C, moves: &[Move<'_>]) -> Result<(), DbErr> {
    let moves = moves.iter().map(|m| {
        (
            [utc_day(m.at), m.currency.to_owned()],
            [m.gross, m.refunded, m.payments],
        )
    });
    let sums = ["gross", "refunded", "payments"];
    add_totals(db, "revenue_days", ["day", "currency"], sums, moves).await
}
