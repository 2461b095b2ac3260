//! What every context stands on: the HTTP layer, the database and the time, the actor of a use
//! case, pagination and validation.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};
use shared::internal::Role;

use crate::clock::Clock;
use crate::events::Outbox;

/// A status kept as text: shown as its text, and equal to it (`order.status == "paid"`).
macro_rules! status_text {
    ($status:ty) => {
        impl std::fmt::Display for $status {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $status {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<str> for $status {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
    };
}
pub(crate) use status_text;

/// The id of one kind of resource (a prefix and 32 hex digits, `ord_…`), parsed at the edge: a
/// use case never gets a malformed id, nor one of another kind.
macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// The id in `text`, if it is one of this kind.
            pub fn parse(text: &str) -> Option<Self> {
                shared::ids::is_valid($prefix, text).then(|| Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use typed_id;

pub mod db;
pub mod entities;
pub mod http;
pub mod metrics;
pub mod nats;
pub mod numbering;
pub mod outbound;
pub mod pagination;
pub mod validate;

/// The wait before try `n + 1` of something that failed `n` times: `base`, doubled for each
/// failure after the first, at most `max` (event redeliveries, the relay's retries, a
/// partner's back-off, the account service's lookups).
pub fn retry_delay(failures: u32, base: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(30));
    base.saturating_mul(factor).min(max)
}

/// What a use case needs of the platform: the database, the outbox its events go to, and the
/// time. Cheap to clone.
#[derive(Clone)]
pub struct Core {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub clock: Arc<dyn Clock>,
}

impl Core {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Begins a transaction that will write (see [`db::begin_write`]).
    pub async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        db::begin_write(&self.db).await
    }

    /// Begins a transaction that writes many rows by their keys (see [`db::begin_batch`]).
    pub async fn begin_batch(&self) -> Result<DatabaseTransaction, DbErr> {
        db::begin_batch(&self.db).await
    }

    /// Commits a transaction that may have recorded events (see [`Outbox::commit`]).
    pub async fn commit(&self, txn: DatabaseTransaction) -> Result<(), DbErr> {
        self.outbox.commit(txn).await
    }
}

/// Who asks for a use case: a user id and its roles, as authenticated at the edge.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    pub roles: Vec<Role>,
}

impl Actor {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }

    /// `service` or `admin`: trusted backends that act for any user.
    pub fn is_trusted(&self) -> bool {
        self.has(Role::Service) || self.has(Role::Admin)
    }
}

/// What goes wrong beneath the domain, in any context: the database, work that was taken
/// over by a retry, or a bug.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    /// The caller's share of the transaction found the work taken over by a retry of the same
    /// request; this one must not commit.
    #[error("the work was taken over by a retry")]
    Superseded,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Work a caller adds to a use case's last transaction, just before it commits: the HTTP layer
/// stores its idempotent answer so, with the work or not at all.
#[async_trait]
pub trait BeforeCommit<T: Sync + ?Sized>: Send + Sync {
    async fn before_commit(&self, txn: &DatabaseTransaction, result: &T) -> Result<(), Fault>;
}

/// Nothing to add.
pub struct Nothing;

#[async_trait]
impl<T: Sync + ?Sized> BeforeCommit<T> for Nothing {
    async fn before_commit(&self, _: &DatabaseTransaction, _: &T) -> Result<(), Fault> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_bound() {
        let (base, max) = (Duration::from_secs(5), Duration::from_secs(60));
        assert_eq!(retry_delay(1, base, max), Duration::from_secs(5));
        assert_eq!(retry_delay(2, base, max), Duration::from_secs(10));
        assert_eq!(retry_delay(4, base, max), Duration::from_secs(40));
        assert_eq!(retry_delay(9, base, max), max);
        assert_eq!(retry_delay(u32::MAX, base, max), max);
    }
}
