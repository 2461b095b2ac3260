//! The state every route and job shares, put together once at start.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::accounts::Accounts;
use crate::billing::Billing;
use crate::config::Config;
use crate::inbound::service::Inbound;
use crate::inbox::service::Inbox;
use crate::payments::service::Payments;
use crate::platform::metrics::Gauges;
use crate::platform::{Core, db};
use crate::providers::Providers;
use crate::providers::mock::MockProvider;
use crate::providers::mock::page::PageCheckouts;
use crate::refunds::service::Refunds;
use crate::webhooks::partners::Partners;
use crate::webhooks::ssrf::Guard;

/// Everything a handler needs, shared: a clone is one reference count (every request's
/// extractors and every webhook delivery clone it).
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> AppState {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Services {
    /// The database, the outbox and the clock.
    pub core: Core,
    pub config: Arc<Config>,
    pub providers: Providers,
    pub payments: Payments,
    /// Plans, subscriptions, invoices and their jobs.
    pub billing: Billing,
    pub refunds: Refunds,
    /// The inventory sagas, when stock is held at an external service (`INVENTORY_URL`).
    pub saga: Option<crate::saga::Saga>,
    pub partners: Partners,
    pub inbound: Inbound,
    /// Events from other services, through either door.
    pub inbox: Inbox,
    /// The account service (in-process unless `ACCOUNTS_URL` is set).
    pub accounts: Arc<dyn Accounts>,
    /// The NATS connection, when `NATS_URL` is set.
    pub nats: Option<async_nats::Client>,
    /// Wakes this replica's NATS relay when events are committed.
    pub publications_due: Arc<Notify>,
    /// The mock provider itself, for its hosted page, and where the page reads payments.
    pub mock: Arc<MockProvider>,
    pub mock_pages: Arc<dyn PageCheckouts>,
    /// Wakes this replica's webhook dispatcher when deliveries are committed.
    pub webhooks_due: Arc<Notify>,
    /// The SSRF guard for partner URLs.
    pub guard: Guard,
    /// What `/metrics` reads from the database, context by context.
    pub gauges: Arc<Vec<Arc<dyn Gauges>>>,
    /// Whether the database is known to be unreachable.
    pub outage: db::Outage,
}

impl Services {
    /// What closes an order's checkouts: its payments.
    pub fn checkouts(&self) -> &Payments {
        &self.payments
    }
}
