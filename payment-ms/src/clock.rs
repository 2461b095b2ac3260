//! Where every piece of code gets the time. Production runs on the system clock; tests use a
//! [`ManualClock`] they set and advance, or a [`ShiftedClock`] (the system clock, moved forward
//! when they say), so time-dependent behaviour (expiry, retries, back-off) is driven instead of
//! waited for, and no test edits a row's times.

use std::fmt;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, SubsecRound, Utc};

pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The time as the machine tells it, to the microsecond (what both databases store).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate(Utc::now())
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Clone)]
pub struct ManualClock {
    at: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn at(at: DateTime<Utc>) -> ManualClock {
        ManualClock {
            at: Arc::new(Mutex::new(truncate(at))),
        }
    }

    /// A clock stopped at the system clock's present.
    pub fn now_stopped() -> ManualClock {
        ManualClock::at(Utc::now())
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.lock() = truncate(at);
    }

    pub fn advance(&self, by: Duration) {
        let mut at = self.lock();
        *at += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A panic while holding this lock cannot leave the time half-written.
        self.at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

/// The system clock moved forward by what [`advance`](Self::advance) added: time still flows
/// (for the webhook dispatcher's retries), and a test can jump past an expiry.
#[derive(Debug, Clone, Default)]
pub struct ShiftedClock {
    ahead: Arc<Mutex<Duration>>,
}

impl ShiftedClock {
    pub fn advance(&self, by: Duration) {
        let mut ahead = self
            .ahead
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *ahead += by;
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        let ahead = *self
            .ahead
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        truncate(Utc::now() + ahead)
    }
}

/// Both databases keep microseconds: a time read back must equal the time written, and
/// compare the same in SQL and in Rust.
fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::now_stopped();
        let start = clock.now();
        assert_eq!(clock.now(), start);
        clock.advance(Duration::minutes(31));
        assert_eq!(clock.now() - start, Duration::minutes(31));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn a_shifted_clock_runs_ahead_by_what_it_was_told() {
        let clock = ShiftedClock::default();
        clock.advance(Duration::hours(25));
        let ahead = clock.now() - SystemClock.now();
        assert!(
            ahead > Duration::hours(24) && ahead <= Duration::hours(25),
            "{ahead}"
        );
    }

    #[test]
    fn times_are_kept_to_the_microsecond() {
        let t = SystemClock.now();
        assert_eq!(t.timestamp_subsec_nanos() % 1_000, 0);
    }
}
