//! Expiring checkouts that were never paid.

use chrono::{DateTime, Utc};

use super::model::{PaymentError, PaymentStatus};
use super::service::Payments;
use super::store;

impl Payments {
    /// Expires pending payments past their time at `at`, after asking the provider, so a
    /// payment made at the last moment is recorded as paid. Answers how many this call expired
    /// (not those another replica expired meanwhile). Safe to run on every replica at once.
    pub async fn expire_due(&self, at: DateTime<Utc>, batch: u64) -> Result<usize, PaymentError> {
        let mut expired = 0;
        for payment in &store::due_to_expire(&self.core.db, at, batch).await? {
            match self.refresh(payment, at).await {
                Ok(applied)
                    if applied.moved
                        && applied.payment.status == PaymentStatus::Expired.as_str() =>
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
