//! The account service, as this one asks it: does this user exist? Behind a trait with two
//! implementations chosen at start: [`http::HttpAccounts`] when `ACCOUNTS_URL` is set (timeouts,
//! retries of its safe calls, health in `/readyz`), and [`LocalAccounts`], the embedded
//! default, for which a user exists until a `user.deleted` event says otherwise.
//!
//! Either way a deletion this service heard of (`deleted_users`, written by the `user.deleted`
//! handler) wins: no order is created for a deleted user, whatever the account service says
//! while it catches up.

pub mod entities;
pub mod http;
pub mod store;

use async_trait::async_trait;
use sea_orm::{DatabaseConnection, DbErr};

/// What is known of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existence {
    Exists,
    /// The account service knows no such user.
    Unknown,
    /// Deleted: this service heard a `user.deleted`, or the account service answered 410.
    Deleted,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// The account service did not answer usably, after its retries.
    #[error("the account service is unavailable: {0}")]
    Unavailable(String),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

#[async_trait]
pub trait Accounts: Send + Sync {
    async fn existence(&self, user_id: &str) -> Result<Existence, AccountsError>;

    /// Whether the account service answers, for `/readyz`; `None` when there is none to ask.
    async fn healthy(&self) -> Option<bool> {
        None
    }
}

/// The embedded default: a user exists unless deleted.
pub struct LocalAccounts {
    pub db: DatabaseConnection,
}

#[async_trait]
impl Accounts for LocalAccounts {
    async fn existence(&self, user_id: &str) -> Result<Existence, AccountsError> {
        Ok(if store::is_deleted(&self.db, user_id).await? {
            Existence::Deleted
        } else {
            Existence::Exists
        })
    }
}
