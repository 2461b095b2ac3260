//! Prometheus metrics: one recorder per process (devstack runs both services in one), rendered
//! by each binary's `/metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode, header};
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

/// The `method` label: the method for the standard ones, `other` for any other, so a client
/// cannot make a new series with each made-up method.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times one request by service, method, route template and status.
pub fn record_request(
    service: &'static str,
    method: &'static str,
    route: String,
    status: StatusCode,
    elapsed: Duration,
) {
    metrics::counter!("http_requests_total", "service" => service, "method" => method,
        "route" => route.clone(), "status" => status.as_u16().to_string())
    .increment(1);
    metrics::histogram!("http_request_duration_seconds", "service" => service, "method" => method,
        "route" => route)
    .record(elapsed.as_secs_f64());
}
