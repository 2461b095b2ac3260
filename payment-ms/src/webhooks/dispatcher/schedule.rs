//! The retry policy: what an attempt makes of its delivery (done, retried when, given up) and
//! of its partner's health (back off, how long).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

use super::super::status;
use super::sender::{Answer, MAX_RETRY_AFTER};
use crate::config::WebhookConfig;
use crate::platform::db::after;
use crate::platform::retry_delay;

/// What an attempt does to its delivery and, beyond it, to its partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Succeeded,
    Retry,
    Gone,
    Exhausted,
}

impl Effect {
    pub fn label(self) -> &'static str {
        match self {
            Effect::Succeeded => "succeeded",
            Effect::Retry => "retry",
            Effect::Gone => "gone",
            Effect::Exhausted => "failed",
        }
    }

    /// The delivery's status after the attempt.
    pub fn status(self) -> &'static str {
        match self {
            Effect::Succeeded => status::SUCCEEDED,
            Effect::Retry => status::PENDING,
            Effect::Gone | Effect::Exhausted => status::FAILED,
        }
    }
}

/// An attempt's outcome for its delivery.
pub struct Plan {
    pub status_code: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub effect: Effect,
}

/// The outcome of attempt number `round` of the current round (1 for the first), answered
/// `answer`, at `at`.
pub fn plan(config: &WebhookConfig, answer: &Answer, round: i32, at: DateTime<Utc>) -> Plan {
    let (status_code, error, retry_after) = match answer {
        Answer::Answered {
            status,
            retry_after,
            ..
        } => (Some(*status), None, *retry_after),
        Answer::Failed(error) => (None, Some(error.clone()), None),
    };
    let last_error = error.or_else(|| {
        status_code
            .filter(|s| !(200..300).contains(s))
            .map(|s| format!("answered {s}"))
    });
    let delay = usize::try_from(round - 1)
        .ok()
        .and_then(|i| config.retry_schedule.get(i))
        .copied();
    let (effect, next_attempt_at) = match (status_code, delay) {
        (Some(s), _) if (200..300).contains(&s) => (Effect::Succeeded, None),
        (Some(410), _) => (Effect::Gone, None),
        (_, Some(delay)) => {
            let wait = jittered(delay, config.jitter_percent)
                .max(retry_after.map_or(Duration::ZERO, |r| r.min(MAX_RETRY_AFTER)));
            (Effect::Retry, Some(after(at, wait)))
        }
        // Past the whole schedule: this event is lost to this partner until recovered.
        (_, None) => (Effect::Exhausted, None),
    };
    Plan {
        status_code: status_code.map(i32::from),
        last_error,
        next_attempt_at,
        effect,
    }
}

/// How an attempt speaks of its partner's health: an answer (any, but a 5xx or a 429) says
/// it is up; no answer, a 5xx or a 429 says it is struggling. Other 4xx say nothing of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Up,
    Struggling,
    Neutral,
}

pub fn health(answer: &Answer) -> Health {
    match answer {
        Answer::Failed(_) => Health::Struggling,
        Answer::Answered { status, .. } => match status {
            200..=299 => Health::Up,
            429 | 500..=599 => Health::Struggling,
            _ => Health::Neutral,
        },
    }
}

/// The back-off of a partner with `failing` attempts in a row that struggled, or `None`
/// below the threshold: the first back-off, doubled for each failure past it, at most the
/// configured maximum.
pub fn backoff(config: &WebhookConfig, failing: i32) -> Option<Duration> {
    let over = u32::try_from(failing)
        .ok()?
        .checked_sub(config.partner_backoff_after)?;
    Some(retry_delay(
        over.saturating_add(1),
        config.partner_backoff,
        config.partner_backoff_max,
    ))
}

/// How many requests a partner may have in flight: the configured cap, or one (a probe) while
/// it is past the back-off threshold.
pub fn room(config: &WebhookConfig, failing: i32) -> usize {
    if u32::try_from(failing).unwrap_or(0) >= config.partner_backoff_after {
        1
    } else {
        config.partner_concurrency
    }
}

/// `delay`, moved at random by up to `percent` of itself either way.
pub fn jittered(delay: Duration, percent: u32) -> Duration {
    if percent == 0 || delay.is_zero() {
        return delay;
    }
    let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    let spread = ms / 100 * u64::from(percent);
    let low = ms.saturating_sub(spread);
    let high = ms.saturating_add(spread);
    Duration::from_millis(rand::rng().random_range(low..=high))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::config::{Env, Profile};

    fn config(pairs: &[(&str, &str)]) -> WebhookConfig {
        WebhookConfig::from_source(&Env::from_pairs(pairs.iter().copied()), Profile::Dev).unwrap()
    }

    #[test]
    fn jitter_stays_within_its_share() {
        let base = Duration::from_secs(100);
        for _ in 0..200 {
            let d = jittered(base, 10);
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
        assert_eq!(jittered(base, 0), base);
    }

    #[test]
    fn a_struggling_partner_is_backed_off_longer_each_time() {
        let config = config(&[]);
        let secs = |failing| backoff(&config, failing).map(|d| d.as_secs());
        assert_eq!(secs(0), None);
        assert_eq!(secs(4), None);
        assert_eq!(secs(5), Some(5));
        assert_eq!(secs(6), Some(10));
        assert_eq!(secs(9), Some(80));
        assert_eq!(secs(12), Some(600));
        assert_eq!(secs(1_000_000), Some(600));
        assert_eq!(room(&config, 4), 32);
        assert_eq!(room(&config, 5), 1);
    }

    #[test]
    fn only_no_answer_5xx_and_429_count_against_a_partner() {
        let answered = |status| Answer::Answered {
            status,
            excerpt: String::new(),
            retry_after: None,
        };
        assert_eq!(health(&Answer::failed("timed out")), Health::Struggling);
        assert_eq!(health(&answered(503)), Health::Struggling);
        assert_eq!(health(&answered(429)), Health::Struggling);
        assert_eq!(health(&answered(204)), Health::Up);
        assert_eq!(health(&answered(400)), Health::Neutral);
        assert_eq!(health(&answered(410)), Health::Neutral);
    }
}
