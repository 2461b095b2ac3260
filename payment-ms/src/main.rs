use std::process::ExitCode;

use payment_ms::Config;
use tokio_util::sync::CancellationToken;

/// mimalloc: a bill run's batches build and drop many small values (rows, events' JSON), and
/// glibc's allocator took about two fifths of payment-ms's CPU in them (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("payment-ms: {e}");
            return ExitCode::from(2);
        }
    };
    shared::telemetry::init(config.log_json);
    let shutdown = CancellationToken::new();
    tokio::spawn(shared::shutdown::on_signal(shutdown.clone()));
    match payment_ms::run(config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "payment-ms stopped");
            ExitCode::FAILURE
        }
    }
}
