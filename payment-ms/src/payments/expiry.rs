//! Expiring checkouts that were never paid, and the payments gauge.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::DbErr;

use super::model::{PaymentError, PaymentStatus};
use super::service::Payments;
use super::store;
use crate::platform::metrics::Gauges;

impl Payments {
    /// Expires pending payments past their time at `at`, after asking the provider, so a
    /// payment made at the last moment is recorded as paid. Answers how many this call expired
    /// (not those another replica expired meanwhile). Safe to run on every replica at once.
    pub async fn expire_due(&self, at: DateTime<Utc>, batch: u64) -> Result<usize, PaymentError> {
        let mut expired = 0;
        for payment in &store::due_to_expire(&self.core.db, at, batch).await? {
            match self.refresh(payment, at).await {
                Ok(applied)
                    if applied.moved && applied.payment.status == PaymentStatus::Expired =>
                {
                    expired += 1
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, payment_id = %payment.id, "could not expire payment")
                }
            }
        }
        Ok(expired)
    }
}

/// `payments{status}`: how many payments are in each status.
#[async_trait]
impl Gauges for Payments {
    async fn refresh(&self) -> Result<(), DbErr> {
        let counts = store::count_by_status(&self.core.db).await?;
        for known in PaymentStatus::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| s == known.as_str())
                .map_or(0, |(_, n)| *n);
            metrics::gauge!("payments", "status" => known.as_str()).set(n as f64);
        }
        Ok(())
    }
}
