//! Logging setup: human-readable lines by default, one JSON object per line with
//! `LOG_FORMAT=json`; the level comes from `RUST_LOG` (default `info`).

use std::fmt::Write as _;
use std::io::IsTerminal;

use axum::http::{HeaderValue, Request};
use tracing::Span;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format;

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
        builder.fmt_fields(text_fields()).try_init()
    };
}

/// The fields of the text format, each value written with its control characters escaped: a
/// value (a `user_id` sent by a client, a partner's error text) can never start a line of its
/// own, forge one, or send a terminal escape. JSON lines escape them by themselves.
pub fn text_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    format::debug_fn(|writer, field, value| {
        let mut out = Escaping(writer);
        match field.name() {
            "message" => write!(out, "{value:?}"),
            name => write!(out, "{name}={value:?}"),
        }
    })
    .delimited(" ")
}

/// Writes through to `0`, escaping control characters on the way.
struct Escaping<'a, 'w>(&'a mut format::Writer<'w>);

impl std::fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.write_str(&crate::text::escape_control(s))
    }
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    #[test]
    fn no_value_can_start_a_line_of_its_own() {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(lines.clone())
            .with_ansi(false)
            .fmt_fields(text_fields())
            .finish();
        let forged = "alice\n2026-01-01T00:00:00Z  INFO payment refunded amount=999999";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", path = %"/a\rb");
            let _entered = span.enter();
            tracing::info!(user_id = %forged, note = "esc\u{1b}[31m", "order \n created");
        });
        let written = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(written.lines().count(), 1, "{written}");
        assert!(written.contains("user_id=alice\\n2026-01-01"), "{written}");
        assert!(written.contains("order \\n created"), "{written}");
        assert!(written.contains("path=/a\\rb"), "{written}");
        assert!(!written.contains('\u{1b}'), "{written}");
    }
}
