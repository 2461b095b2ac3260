//! Prometheus metrics: one recorder per process (devstack runs both services in one), rendered
//! by each binary's `/metrics`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets, in seconds: from a fast local answer to a slow provider.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the recorder on first use. `None` if another recorder was installed first (then
/// metrics are not collected, and nothing else changes).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".to_owned()), BUCKETS)
                .ok()?
                .install_recorder()
                .ok()?;
            // The recorder keeps every histogram sample until an upkeep folds them into
            // buckets; without a scraper calling /metrics, memory would grow with every
            // request. A thread of its own, so this works outside any runtime too.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no metrics upkeep thread; histograms are folded at scrape only");
            }
            Some(handle)
        })
        .as_ref()
}

/// The metrics in Prometheus' text format.
pub async fn render() -> Response {
    let body = install()
        .map(|handle| {
            handle.run_upkeep();
            handle.render()
        })
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Middleware: counts and times every request by service, method, route template (never the
/// raw path, whose ids would make every request a new series) and status.
pub async fn track(State(service): State<&'static str>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "service" => service, "method" => method.clone(),
        "route" => route.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("http_request_duration_seconds", "service" => service, "method" => method,
        "route" => route)
    .record(started.elapsed().as_secs_f64());
    response
}
