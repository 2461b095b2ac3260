use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use gateway::Config;
use gateway::config::{JwtConfig, JwtKey};
use secrecy::ExposeSecret;
use shared::config::{Env, Profile};
use tokio_util::sync::CancellationToken;

/// mimalloc: the request path allocates a lot of small buffers, and glibc's allocator took a
/// fifth of the gateway's CPU under load (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "gateway",
    about = "The payment stack's gateway (configured by environment; see docs/configuration.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Print a token signed with JWT_HS256_SECRET (and JWT_ISSUER / JWT_AUDIENCE when set).
    Token {
        /// The user id (`sub`).
        #[arg(long)]
        sub: String,
        /// Comma-separated roles, e.g. `service` or `service,admin`.
        #[arg(long, default_value = "")]
        roles: String,
        /// How long the token is valid, e.g. `1h`, `30m`, `7d`.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Token { sub, roles, ttl } => token(&sub, &roles, ttl),
    }
}

async fn serve() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("gateway: {e}");
            return ExitCode::from(2);
        }
    };
    shared::telemetry::init(config.log_json);
    if config.jwt.generated {
        tracing::warn!(
            "no JWT key is configured: tokens are verified with a key made for this run"
        );
        // Shown to the person who started it (not logged), so they can mint tokens for it.
        if let JwtKey::Hs256(secret) = &config.jwt.key {
            eprintln!(
                "gateway (dev profile): no JWT key is set, so this run verifies tokens with\n  \
                 JWT_HS256_SECRET={key}\nMint one with:\n  \
                 JWT_HS256_SECRET={key} gateway token --sub alice --roles service",
                key = secret.expose_secret()
            );
        }
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(shared::shutdown::on_signal(shutdown.clone()));
    match gateway::run(config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "gateway stopped");
            ExitCode::FAILURE
        }
    }
}

fn token(sub: &str, roles: &str, ttl: Duration) -> ExitCode {
    // Minting needs the real secret in every profile: a random dev key would sign tokens that
    // no running gateway accepts.
    let env = Env::process();
    if env.get("JWT_HS256_SECRET").is_none() {
        eprintln!(
            "gateway token: set JWT_HS256_SECRET to the key the gateway verifies tokens with"
        );
        return ExitCode::from(2);
    }
    let config = match JwtConfig::from_source(&env, Profile::Dev) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("gateway token: {e}");
            return ExitCode::from(2);
        }
    };
    let roles: Vec<&str> = roles
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect();
    match gateway::auth::mint_token(&config, sub, &roles, ttl) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gateway token: {e}");
            ExitCode::FAILURE
        }
    }
}
