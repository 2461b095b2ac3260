//! One signed request to a partner, and what its answer came to. Whatever the partner answers
//! (NUL bytes, invalid UTF-8, megabytes, a body that never ends, odd headers) comes back as an
//! [`Answer`] fit to be recorded: a bounded, sanitized excerpt, and an error text of one line.

use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::signing;

use crate::AppState;

/// How much of a partner's answer is kept with the attempt.
pub const EXCERPT_BYTES: usize = 1024;
/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest error text kept.
const MAX_ERROR_CHARS: usize = 500;

/// What one attempt came to.
#[derive(Debug, Clone)]
pub enum Answer {
    Answered {
        status: u16,
        excerpt: String,
        retry_after: Option<Duration>,
    },
    /// No answer: the reason, one line.
    Failed(String),
}

impl Answer {
    /// A failure whose text is made safe to store and print.
    pub fn failed(reason: impl AsRef<str>) -> Answer {
        Answer::Failed(one_line(reason.as_ref(), MAX_ERROR_CHARS))
    }
}

/// The HTTP client of the delivery worker.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    guard: super::super::ssrf::Guard,
}

impl Sender {
    pub fn new(state: &AppState) -> anyhow::Result<Sender> {
        let config = &state.config.webhooks;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            // A redirect is a failure, never followed: it could lead anywhere.
            .redirect(reqwest::redirect::Policy::none())
            // The SSRF guard resolves every host, so the address checked is the one used.
            .dns_resolver(state.guard.clone())
            .user_agent(concat!(
                "payment-stack-webhooks/",
                env!("CARGO_PKG_VERSION")
            ))
            .pool_max_idle_per_host(config.partner_concurrency)
            .build()?;
        Ok(Sender {
            client,
            guard: state.guard.clone(),
        })
    }

    /// Sends `body` to `url`, signed with `signature`, and reads at most [`EXCERPT_BYTES`] of
    /// the answer.
    pub async fn send(
        &self,
        url: &str,
        id: &str,
        timestamp: i64,
        signature: &str,
        body: Vec<u8>,
    ) -> Answer {
        let parsed = match url::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return Answer::failed(format!("invalid URL: {e}")),
        };
        // reqwest does not resolve literal addresses, so the guard looks at them here.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal.filter(|ip| !self.guard.permits(*ip)) {
            return Answer::failed(format!("refused: {ip} is not a public address"));
        }
        let response = self
            .client
            .post(parsed)
            .header("content-type", "application/json")
            .header(signing::ID_HEADER, id)
            .header(signing::TIMESTAMP_HEADER, timestamp.to_string())
            .header(signing::SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => return Answer::failed(describe(&e)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, Utc::now()));
        // The excerpt only: the rest of a large or never-ending body is never read (the
        // connection is dropped with the response), and a body cut by the timeout keeps what
        // arrived.
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
                _ => break,
            }
        }
        excerpt.truncate(EXCERPT_BYTES);
        Answer::Answered {
            status,
            excerpt: sanitize_excerpt(&excerpt),
            retry_after,
        }
    }
}

/// Bytes of a partner's answer as text that every database stores and every log prints:
/// invalid UTF-8 and control characters (NUL above all, which PostgreSQL refuses) become
/// U+FFFD; tabs and line breaks stay, as the partner wrote them.
pub fn sanitize_excerpt(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if shared::text::is_control(c) && !matches!(c, '\t' | '\n' | '\r') {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect()
}

/// `text` on one line, control characters escaped, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    shared::text::escape_control(text)
        .chars()
        .take(max)
        .collect()
}

/// `Retry-After`: seconds, or an HTTP date; `None` for anything else.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = DateTime::parse_from_rfc2822(value.trim()).ok()?;
    (when.with_timezone(&Utc) - now).to_std().ok()
}

/// An error with its causes, for the attempt log (`connection refused`, `timed out`).
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_dates() {
        let now = Utc::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        let soon = (now + chrono::Duration::seconds(90)).to_rfc2822();
        let parsed = parse_retry_after(&soon, now).unwrap();
        assert!(parsed > Duration::from_secs(88) && parsed <= Duration::from_secs(90));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn excerpts_are_text_every_database_stores() {
        assert_eq!(sanitize_excerpt(b"ok\0done"), "ok\u{fffd}done");
        assert_eq!(sanitize_excerpt(b"a\xff\xfeb"), "a\u{fffd}\u{fffd}b");
        assert_eq!(sanitize_excerpt(b"line 1\r\nline\t2"), "line 1\r\nline\t2");
        assert_eq!(sanitize_excerpt(b"\x1b[31mred"), "\u{fffd}[31mred");
        // A multi-byte character cut at the excerpt's end is replaced, not an error.
        assert_eq!(sanitize_excerpt("é".as_bytes()[..1].as_ref()), "\u{fffd}");
    }

    #[test]
    fn failure_texts_stay_on_one_bounded_line() {
        let Answer::Failed(text) = Answer::failed(format!("bad\nheader\0{}", "x".repeat(900)))
        else {
            unreachable!()
        };
        assert!(text.starts_with("bad\\nheader\\u{0}x"), "{text}");
        assert_eq!(text.chars().count(), MAX_ERROR_CHARS);
    }
}
