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
pub mod limits;
pub mod openapi;
mod routes;
pub mod upstream;

pub use config::Config;

use auth::Authenticator;
use limits::RateLimits;
use upstream::PaymentMs;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub auth: Arc<Authenticator>,
    /// Behind an `Arc`: the state is cloned several times per request, and the client holds
    /// a URL and a secret that would be copied (and the secret wiped) each time.
    pub payment_ms: Arc<PaymentMs>,
    pub limits: Arc<RateLimits>,
}

impl AppState {
    pub fn new(config: Config) -> anyhow::Result<AppState> {
        let payment_ms = PaymentMs::new(
            config.payment_ms_url.clone(),
            config.internal_token.clone(),
            config.upstream_timeout,
            config.upstream_max_in_flight,
        )
        .context("building the payment-ms client")?;
        Ok(AppState {
            auth: Arc::new(Authenticator::new(&config.jwt).context("loading the JWT key")?),
            payment_ms: Arc::new(payment_ms),
            limits: Arc::new(RateLimits::new(
                config.rate_per_user,
                config.rate_per_address,
                config.rate_per_trusted,
            )),
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

    /// Serves until `shutdown` is cancelled, then lets in-flight requests finish, for
    /// `SHUTDOWN_TIMEOUT` at most.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(addr = %self.listener.local_addr()?, upstream = %self.state.config.payment_ms_url, "gateway listening");
        let limits = self.state.limits.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => limits.forget_idle(),
                }
            }
        });
        let options = shared::http::ServeOptions {
            header_read_timeout: self.state.config.header_read_timeout,
            shutdown_bound: self.state.config.shutdown_timeout,
        };
        shared::http::serve(self.listener, app(self.state), shutdown, options)
            .await
            .context("serving HTTP")
    }
}

pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    Application::build(config).await?.run_until(shutdown).await
}
