//! Logging setup: human-readable lines by default, one JSON object per line with
//! `LOG_FORMAT=json`; the level comes from `RUST_LOG` (default `info`).

use std::io::IsTerminal;

use axum::http::{HeaderValue, Request};
use tracing::Span;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber and the metrics recorder. Safe to call more than once (tests
/// start many apps in one process); later calls do nothing.
pub fn init(json: bool) {
    // The recorder calibrates its clock (quanta: the TSC against the monotonic clock) when it
    // is built, spinning until the two agree or 200 ms have passed. In a quiet process that
    // takes under a millisecond; built later, beside the database pool's threads opening
    // connections, it ran to the 200 ms limit and held payment-ms's readiness back by as much
    // (docs/BENCHMARKS.md, "Memory and start-up"). So it is built first.
    crate::metrics::install();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,hyper=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal());
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// The span of one HTTP request: method, path (never the query string, which may carry
/// tokens) and its request id (the client's, or the one made for it).
pub fn request_span<B>(request: &Request<B>, request_id: &HeaderValue) -> Span {
    let request_id = request_id.to_str().unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}
