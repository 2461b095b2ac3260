//! The gateway: the only service a browser or an app backend talks to. It authenticates every
//! request (JWT), authorizes what roles decide, and proxies to payment-ms with the internal
//! token, the caller's identity and a request id. It keeps no state.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod auth;
pub mod config;
mod routes;
pub mod upstream;

pub use config::Config;

use auth::Authenticator;
use upstream::PaymentMs;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub auth: Arc<Authenticator>,
    pub payment_ms: PaymentMs,
}

impl AppState {
    pub fn new(config: Config) -> anyhow::Result<AppState> {
        let payment_ms = PaymentMs::new(
            config.payment_ms_url.clone(),
            config.internal_token.clone(),
            config.upstream_timeout,
        )
        .context("building the payment-ms client")?;
        Ok(AppState {
            auth: Arc::new(Authenticator::new(&config.jwt).context("loading the JWT key")?),
            payment_ms,
            config: Arc::new(config),
        })
    }
}

/// The router, without a socket: tests can drive it with `oneshot`.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("binding GATEWAY_ADDR {}", config.addr))?;
        let state = AppState::new(config)?;
        state.auth.warm_up().await;
        Ok(Application { state, listener })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests finish.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(addr = %self.listener.local_addr()?, upstream = %self.state.config.payment_ms_url, "gateway listening");
        axum::serve(self.listener, app(self.state))
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .context("serving HTTP")
    }
}

pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    Application::build(config).await?.run_until(shutdown).await
}
