//! The state every route and job shares.

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DatabaseTransaction};
use tokio::sync::Notify;

use crate::config::Config;
use crate::events::outbox;
use crate::platform::db;
use crate::platform::http::error;
use crate::providers::Providers;
use crate::providers::mock::MockProvider;
use crate::webhooks::ssrf::Guard;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub providers: Providers,
    /// The mock provider itself, for its hosted page.
    pub mock: Arc<MockProvider>,
    /// Wakes this replica's webhook dispatcher when events are committed.
    pub outbox: Arc<Notify>,
    /// The SSRF guard for partner URLs.
    pub guard: Guard,
    /// Whether the database is known to be unreachable.
    pub outage: db::Outage,
}

impl AppState {
    /// Commits a transaction that may have recorded events, and wakes the dispatcher so they
    /// go out at once.
    pub async fn commit(&self, txn: DatabaseTransaction) -> error::Result<()> {
        txn.commit().await?;
        outbox::committed();
        self.outbox.notify_one();
        Ok(())
    }
}
