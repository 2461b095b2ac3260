//! payment-ms: the payment backend. It owns orders, payments and their events, talks to the
//! payment providers and serves the mock provider's hosted checkout page.
//!
//! [`Application::build`] prepares everything (migrations, pool, listener); `run_until` serves
//! until the shutdown token fires. `main`, the tests and the dev runner all go through it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub mod accounts;
pub mod billing;
pub mod bus;
pub mod catalogue;
pub mod clock;
pub mod config;
pub mod events;
pub mod inbound;
pub mod inbox;
pub mod inventory;
pub mod jobs;
pub mod orders;
pub mod payments;
pub mod platform;
pub mod providers;
pub mod refunds;
pub mod saga;
pub mod state;
pub mod webhooks;

pub use config::Config;
pub use state::AppState;

use accounts::http::HttpAccounts;
use accounts::{Accounts, LocalAccounts};
use bus::publications::{Publications, RelayGauges};
use bus::relay::Relay;
use clock::{Clock, SystemClock};
use events::Outbox;
use inbound::service::Inbound;
use inbox::consumer::Consumers;
use inbox::service::Inbox;
use payments::service::Payments;
use platform::Core;
use providers::mock::MockProvider;
use providers::stripe::StripeProvider;
use providers::{PaymentProvider, Providers};
use refunds::service::Refunds;
use webhooks::dispatcher::Dispatcher;
use webhooks::fan_out::FanOut;
use webhooks::partners::Partners;
use webhooks::ssrf::Guard;

/// The router, without a socket: tests can drive it with `oneshot`. Every context's routes:
/// the mock provider's page and inbound provider webhooks at the root, the API for the gateway
/// under `/internal/v1`.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(providers::mock::page::router())
        .merge(inbound::routes::router())
        .nest(
            "/internal/v1",
            Router::new()
                .merge(orders::routes::router())
                .merge(billing::routes::router())
                .merge(payments::routes::router())
                .merge(refunds::routes::router())
                .merge(inbox::routes::router())
                .merge(inventory::routes::router())
                .merge(catalogue::routes::router())
                .merge(webhooks::routes::router()),
        );
    platform::http::router(api, state)
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Migrates the database, opens the pool and binds `config.addr`.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("binding PAYMENT_MS_ADDR {}", config.addr))?;
        Self::with_listener(config, listener).await
    }

    /// As [`build`](Self::build), on a listener the caller bound (tests bind port 0 first so
    /// they know the public URL before the app starts).
    pub async fn with_listener(
        config: Config,
        listener: TcpListener,
    ) -> anyhow::Result<Application> {
        Self::with_clock(config, listener, Arc::new(SystemClock)).await
    }

    /// As [`with_listener`](Self::with_listener), on a clock the caller holds (tests move a
    /// [`clock::ManualClock`] instead of waiting or editing rows).
    pub async fn with_clock(
        config: Config,
        listener: TcpListener,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Application> {
        if config.profile == shared::config::Profile::Prod && config.mock_enabled {
            tracing::warn!(
                "MOCK PROVIDER ENABLED IN PRODUCTION: MOCK_PROVIDER_ENABLED=true in the prod \
                 profile lets a buyer pay on the mock's page, so an order is paid while no money \
                 moves; set it only on a staging deployment"
            );
        }
        let url = config.database_url.expose_secret().to_owned();
        migrations::migrate_up(&url)
            .await
            .context("applying database migrations")?;
        let db = platform::db::connect(&url, config.database_max_connections)
            .await
            .context("connecting to DATABASE_URL")?;
        let mock = Arc::new(MockProvider::new(
            db.clone(),
            config.public_base_url.clone(),
            clock.clone(),
        ));
        let mut enabled: Vec<Arc<dyn PaymentProvider>> = Vec::new();
        if config.mock_enabled {
            enabled.push(mock.clone());
        }
        if let Some(stripe) = &config.stripe {
            if stripe.webhook_secret.is_none() {
                tracing::warn!(
                    "STRIPE_WEBHOOK_SECRET is not set: Stripe webhooks are refused, \
                    and payments settle only through verify and the expiry sweep"
                );
            }
            let provider =
                StripeProvider::new(stripe.clone()).context("building the Stripe client")?;
            enabled.push(Arc::new(provider));
        }
        let providers = Providers::new(enabled, &config.payment_provider);
        let guard = Guard::new(config.webhooks.allowed_cidrs.clone());
        let webhooks_due = Arc::new(Notify::new());
        let publications_due = Arc::new(Notify::new());
        // The outbox's outputs and the contexts' reactions to each other's events.
        let mut outputs: Vec<Arc<dyn events::Output>> = vec![Arc::new(FanOut {
            due: webhooks_due.clone(),
        })];
        let nats = match &config.nats {
            Some(nats) => {
                outputs.push(Arc::new(Publications {
                    due: publications_due.clone(),
                }));
                Some(
                    platform::nats::connect(nats)
                        .await
                        .context("connecting to NATS_URL")?,
                )
            }
            None => None,
        };
        // Stock: the built-in tables, or an external service through sagas.
        let saga_due = Arc::new(Notify::new());
        let external = match &config.external_inventory {
            Some(external) => Some(Arc::new(
                saga::external::ExternalInventory::new(external.clone())
                    .context("building the inventory service client")?,
            )),
            None => None,
        };
        let stock_reactions: Arc<dyn events::Reaction> = match &external {
            Some(_) => Arc::new(saga::reactions::OnOrdersAndPayments {
                due: saga_due.clone(),
            }),
            None => Arc::new(inventory::reactions::OnOrdersAndPayments),
        };
        let outbox = Outbox::new(
            outputs,
            vec![
                Arc::new(orders::reactions::OnPayments),
                Arc::new(billing::reactions::OnOrders),
                stock_reactions,
            ],
        );
        let accounts: Arc<dyn Accounts> = match &config.accounts {
            Some(accounts) => Arc::new(
                HttpAccounts::new(accounts.clone(), db.clone())
                    .context("building the account service client")?,
            ),
            None => Arc::new(LocalAccounts { db: db.clone() }),
        };
        let core = Core { db, outbox, clock };
        // A reserve call may take its timeout thrice before the worker takes its saga over.
        let saga_lease = config
            .external_inventory
            .as_ref()
            .map(|e| (e.timeout * 3).max(std::time::Duration::from_secs(10)))
            .unwrap_or_default();
        let stock: Arc<dyn inventory::InventoryClient> = match &external {
            Some(external) => Arc::new(saga::client::SagaInventory {
                core: core.clone(),
                external: external.clone(),
                lease: saga_lease,
                settle_after: (config.request_timeout * 2).max(saga_lease),
                due: saga_due.clone(),
            }),
            None => Arc::new(inventory::builtin::BuiltIn { core: core.clone() }),
        };
        let payments = Payments {
            core: core.clone(),
            providers: providers.clone(),
            payment_ttl: config.payment_ttl,
            inventory: stock,
            inventory_hold: config.inventory_hold,
        };
        let refunds = Refunds {
            payments: payments.clone(),
            request_timeout: config.request_timeout,
        };
        let partners = Partners {
            core: core.clone(),
            guard: guard.clone(),
            config: Arc::new(config.webhooks.clone()),
            due: webhooks_due.clone(),
        };
        partners
            .sync_n8n()
            .await
            .context("configuring the n8n hook")?;
        let inbound = Inbound {
            core: core.clone(),
            providers: providers.clone(),
            payments: payments.clone(),
            refunds: refunds.clone(),
        };
        let billing = billing::Billing {
            core: core.clone(),
            payments: payments.clone(),
            refunds: refunds.clone(),
            config: Arc::new(config.billing.clone()),
            public_base_url: config.public_base_url.clone(),
            due: Arc::new(Notify::new()),
        };
        let saga = external.map(|external| saga::Saga {
            core: core.clone(),
            external,
            refunds: refunds.clone(),
            due: saga_due.clone(),
            lease: saga_lease,
        });
        let inbox = Inbox {
            core: core.clone(),
            billing: billing.clone(),
            payments: payments.clone(),
            accounts: accounts.clone(),
            order_ttl: config.order_ttl,
        };
        let mut gauges: Vec<Arc<dyn platform::metrics::Gauges>> = vec![
            Arc::new(payments.clone()),
            Arc::new(webhooks::QueueGauges(payments.core.clone())),
            Arc::new(inbox::InboxGauges(core.db.clone())),
        ];
        if nats.is_some() {
            gauges.push(Arc::new(RelayGauges {
                db: core.db.clone(),
                clock: core.clock.clone(),
            }));
        }
        let state = AppState::new(state::Services {
            outage: platform::db::Outage::new(&url),
            core,
            config: Arc::new(config),
            providers,
            mock_pages: Arc::new(payments.clone()),
            gauges: Arc::new(gauges),
            payments,
            billing,
            inbox,
            accounts,
            nats,
            publications_due,
            refunds,
            saga,
            partners,
            inbound,
            mock,
            webhooks_due,
            guard,
        });
        Ok(Application { listener, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests finish, stops the
    /// expiry sweep and closes the pool.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application { listener, state } = self;
        tracing::info!(addr = %listener.local_addr()?, "payment-ms listening");
        let sweeper = tokio::spawn(jobs::sweep_loop(state.clone(), shutdown.clone()));
        let biller = state.config.billing.jobs_enabled.then(|| {
            tokio::spawn(billing::jobs::run_loop(
                state.billing.clone(),
                shutdown.clone(),
            ))
        });
        let sagas = state
            .saga
            .clone()
            .map(|saga| tokio::spawn(saga::worker::run_loop(saga, shutdown.clone())));
        let dispatcher = if state.config.webhooks.enabled {
            let dispatcher =
                Dispatcher::new(state.clone()).context("building the webhook client")?;
            Some(tokio::spawn(dispatcher.run(shutdown.clone())))
        } else {
            None
        };
        let mut bus = Vec::new();
        if let (Some(client), Some(nats)) = (&state.nats, &state.config.nats) {
            if nats.relay.enabled {
                let relay = Relay::new(
                    client.clone(),
                    state.core.db.clone(),
                    state.core.clock.clone(),
                    nats.stream.clone(),
                    nats.relay.clone(),
                    state.publications_due.clone(),
                );
                bus.push(tokio::spawn(relay.run(shutdown.clone())));
            }
            if !nats.consumer.sources.is_empty() {
                let consumers =
                    Consumers::new(client.clone(), state.inbox.clone(), nats.consumer.clone());
                bus.push(tokio::spawn(consumers.run(shutdown.clone())));
            }
        }
        let options = shared::http::ServeOptions {
            header_read_timeout: state.config.header_read_timeout,
            shutdown_bound: state.config.shutdown_timeout,
        };
        let served =
            shared::http::serve(listener, app(state.clone()), shutdown.clone(), options).await;
        shutdown.cancel();
        if let Err(e) = sweeper.await {
            tracing::warn!(error = %e, "expiry sweep ended abnormally");
        }
        if let Some(Err(e)) = match biller {
            Some(handle) => Some(handle.await),
            None => None,
        } {
            tracing::warn!(error = %e, "billing job runner ended abnormally");
        }
        if let Some(Err(e)) = match sagas {
            Some(handle) => Some(handle.await),
            None => None,
        } {
            tracing::warn!(error = %e, "inventory saga worker ended abnormally");
        }
        if let Some(Err(e)) = match dispatcher {
            Some(handle) => Some(handle.await),
            None => None,
        } {
            tracing::warn!(error = %e, "webhook dispatcher ended abnormally");
        }
        for task in bus {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "the NATS relay or a consumer ended abnormally");
            }
        }
        if let Some(client) = &state.nats
            && let Err(e) = client.flush().await
        {
            tracing::debug!(error = %e, "flushing the NATS connection");
        }
        state.core.db.clone().close().await.ok();
        served.context("serving HTTP")
    }
}

/// `main`'s entry point: build, then serve until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    Application::build(config).await?.run_until(shutdown).await
}
