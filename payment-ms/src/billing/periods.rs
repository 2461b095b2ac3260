//! Billing periods and proration, as pure functions.
//!
//! A subscription's period boundaries are always computed from its anchor: boundary `k` is the
//! anchor's wall-clock time in the subscription's IANA time zone plus `k × interval`, the day
//! clamped to the month's end (anchored on 31 January: 28/29 February, 31 March, 30 April), and
//! never "the previous end plus a month" (which would drift to the 28th for good). A wall-clock
//! time the zone skips (a DST gap) moves forward to the first time that exists; one it repeats
//! is the earlier of the two.
//!
//! Proration is by the second: the unused share of a period is `amount × remaining / length`,
//! rounded half away from zero once; the used share is the rest, so the two always add up to
//! the amount.

use chrono::{DateTime, Days, LocalResult, Months, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The unit of a plan's billing interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Day,
    Week,
    Month,
    Year,
}

impl Interval {
    pub const ALL: [Interval; 4] = [
        Interval::Day,
        Interval::Week,
        Interval::Month,
        Interval::Year,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }

    pub fn parse(s: &str) -> Option<Interval> {
        Interval::ALL.into_iter().find(|i| i.as_str() == s)
    }

    /// Roughly how many days one interval lasts: only to compare prices per day across plans
    /// and to guess a boundary's index before checking it.
    fn nominal_days(self) -> i64 {
        match self {
            Interval::Day => 1,
            Interval::Week => 7,
            Interval::Month => 30,
            Interval::Year => 365,
        }
    }
}

/// A plan's cadence: `count` intervals per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    pub interval: Interval,
    pub count: u32,
}

/// The longest cadence a plan may have (3 years), so every boundary stays representable.
pub const MAX_INTERVAL_COUNT: [(Interval, u32); 4] = [
    (Interval::Day, 1095),
    (Interval::Week, 156),
    (Interval::Month, 36),
    (Interval::Year, 3),
];

impl Cadence {
    /// Roughly how many days a period lasts.
    pub fn nominal_days(self) -> i64 {
        self.interval.nominal_days() * i64::from(self.count)
    }
}

/// Where a subscription's periods start from.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub anchor: DateTime<Utc>,
    pub zone: Tz,
    pub cadence: Cadence,
}

impl Schedule {
    /// Boundary `k`: the start of period `k` (0 is the anchor) and the end of period `k − 1`.
    pub fn boundary(&self, k: u32) -> Option<DateTime<Utc>> {
        let local = self.anchor.with_timezone(&self.zone).naive_local();
        let steps = k.checked_mul(self.cadence.count)?;
        let moved = match self.cadence.interval {
            Interval::Day => local.checked_add_days(Days::new(u64::from(steps)))?,
            Interval::Week => local.checked_add_days(Days::new(u64::from(steps) * 7))?,
            // `checked_add_months` clamps the day to the month's end.
            Interval::Month => local.checked_add_months(Months::new(steps))?,
            Interval::Year => local.checked_add_months(Months::new(steps.checked_mul(12)?))?,
        };
        to_utc(self.zone, moved)
    }

    /// The index of the period `at` falls in (the last boundary at or before it); `None`
    /// before the anchor.
    pub fn index_at(&self, at: DateTime<Utc>) -> Option<u32> {
        if at < self.anchor {
            return None;
        }
        let days = (at - self.anchor).num_days();
        let guess = u32::try_from(days / self.cadence.nominal_days().max(1)).ok()?;
        let mut k = guess.saturating_sub(2);
        // Boundaries grow strictly, so this walks at most a few steps past the guess.
        while self.boundary(k + 1)? <= at {
            k += 1;
        }
        while k > 0 && self.boundary(k)? > at {
            k -= 1;
        }
        Some(k)
    }

    /// The period `at` falls in: `[start, end)`.
    pub fn period_at(&self, at: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let k = self.index_at(at)?;
        Some((self.boundary(k)?, self.boundary(k + 1)?))
    }
}

/// A local wall-clock time in `zone` as an instant: the earlier of two in a repeated hour, the
/// first existing time after a skipped one.
fn to_utc(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let mut candidate = local;
    // DST gaps are at most a few hours; step in quarter hours (some zones move by 30 minutes).
    for _ in 0..=16 {
        match zone.from_local_datetime(&candidate) {
            LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(earlier, _) => return Some(earlier.with_timezone(&Utc)),
            LocalResult::None => candidate += chrono::Duration::minutes(15),
        }
    }
    None
}

/// The unused part of `amount` for a period `[start, end)` left at `from`: `amount × (end −
/// from) / (end − start)`, by the second, rounded half away from zero. `from` outside the
/// period answers the whole amount (before it) or nothing (after it).
pub fn unused_share(
    amount: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    from: DateTime<Utc>,
) -> i64 {
    let length = (end - start).num_seconds();
    if length <= 0 || from >= end {
        return 0;
    }
    if from <= start {
        return amount;
    }
    let remaining = (end - from).num_seconds();
    divide_rounded(
        i128::from(amount) * i128::from(remaining),
        i128::from(length),
    )
}

/// `n / d` rounded half away from zero (`d > 0`).
fn divide_rounded(n: i128, d: i128) -> i64 {
    let q = n / d;
    let r = n % d;
    let q = if 2 * r.abs() >= d { q + n.signum() } else { q };
    // |n / d| ≤ |amount|, which came from an i64.
    i64::try_from(q).unwrap_or(if q < 0 { i64::MIN } else { i64::MAX })
}

/// Whether moving from `old` to `new` (same currency) is an upgrade: a higher price per day.
/// Compared exactly, by cross-multiplying the nominal period lengths.
pub fn is_upgrade(old: (i64, Cadence), new: (i64, Cadence)) -> bool {
    let (old_amount, old_cadence) = old;
    let (new_amount, new_cadence) = new;
    i128::from(new_amount) * i128::from(old_cadence.nominal_days())
        > i128::from(old_amount) * i128::from(new_cadence.nominal_days())
}

/// `name` as an IANA time zone.
pub fn zone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike};
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a test time")
            .with_timezone(&Utc)
    }

    fn monthly(anchor: &str, zone_name: &str) -> Schedule {
        Schedule {
            anchor: utc(anchor),
            zone: zone(zone_name).expect("a zone"),
            cadence: Cadence {
                interval: Interval::Month,
                count: 1,
            },
        }
    }

    #[test]
    fn the_31st_is_clamped_each_month_and_comes_back() {
        let s = monthly("2027-01-31T10:00:00Z", "UTC");
        let ends: Vec<String> = (0..5)
            .map(|k| s.boundary(k).expect("a boundary").to_rfc3339())
            .collect();
        assert_eq!(
            ends,
            [
                "2027-01-31T10:00:00+00:00",
                "2027-02-28T10:00:00+00:00",
                "2027-03-31T10:00:00+00:00",
                "2027-04-30T10:00:00+00:00",
                "2027-05-31T10:00:00+00:00",
            ]
        );
        let leap = monthly("2028-01-31T10:00:00Z", "UTC");
        assert_eq!(
            leap.boundary(1).map(|t| t.to_rfc3339()).as_deref(),
            Some("2028-02-29T10:00:00+00:00")
        );
    }

    #[test]
    fn a_yearly_plan_from_the_29th_of_february() {
        let s = Schedule {
            cadence: Cadence {
                interval: Interval::Year,
                count: 1,
            },
            ..monthly("2028-02-29T00:00:00Z", "UTC")
        };
        assert_eq!(s.boundary(1), Some(utc("2029-02-28T00:00:00Z")));
        assert_eq!(s.boundary(4), Some(utc("2032-02-29T00:00:00Z")));
    }

    #[test]
    fn boundaries_keep_local_midnight_across_dst() {
        // Midnight in New York: 05:00Z in winter, 04:00Z in summer.
        let s = monthly("2027-01-15T05:00:00Z", "America/New_York");
        assert_eq!(s.boundary(0), Some(utc("2027-01-15T05:00:00Z")));
        assert_eq!(s.boundary(3), Some(utc("2027-04-15T04:00:00Z")));
        assert_eq!(s.boundary(10), Some(utc("2027-11-15T05:00:00Z")));
    }

    #[test]
    fn a_time_the_zone_skips_moves_forward() {
        // 02:30 local on 14 March 2027 does not exist in New York (clocks jump 02:00 → 03:00).
        let s = Schedule {
            cadence: Cadence {
                interval: Interval::Day,
                count: 1,
            },
            ..monthly("2027-03-13T07:30:00Z", "America/New_York")
        };
        let skipped = s.boundary(1).expect("a boundary");
        let local = skipped.with_timezone(&zone("America/New_York").expect("a zone"));
        assert_eq!((local.day(), local.hour(), local.minute()), (14, 3, 0));
        assert_eq!(s.boundary(2), Some(utc("2027-03-15T06:30:00Z")));
    }

    #[test]
    fn the_period_of_an_instant() {
        let s = monthly("2027-01-31T10:00:00Z", "UTC");
        assert_eq!(s.index_at(utc("2027-01-31T09:59:59Z")), None);
        assert_eq!(s.index_at(utc("2027-01-31T10:00:00Z")), Some(0));
        assert_eq!(
            s.period_at(utc("2027-03-01T00:00:00Z")),
            Some((utc("2027-02-28T10:00:00Z"), utc("2027-03-31T10:00:00Z")))
        );
    }

    #[test]
    fn proration_rounds_once_half_away_from_zero() {
        let (start, end) = (utc("2027-01-01T00:00:00Z"), utc("2027-01-31T00:00:00Z"));
        // Half of 999 is 499.5: 500 unused, 499 used.
        assert_eq!(
            unused_share(999, start, end, utc("2027-01-16T00:00:00Z")),
            500
        );
        assert_eq!(unused_share(999, start, end, start), 999);
        assert_eq!(unused_share(999, start, end, end), 0);
        assert_eq!(
            unused_share(1000, start, end, utc("2027-01-11T00:00:00Z")),
            667
        );
    }

    #[test]
    fn upgrades_compare_prices_per_day() {
        let month = Cadence {
            interval: Interval::Month,
            count: 1,
        };
        let year = Cadence {
            interval: Interval::Year,
            count: 1,
        };
        assert!(is_upgrade((1000, month), (2000, month)));
        assert!(!is_upgrade((2000, month), (1000, month)));
        assert!(!is_upgrade((1000, month), (1000, month)));
        // 10,000 a year is less per day than 1,000 a month.
        assert!(!is_upgrade((1000, month), (10_000, year)));
        assert!(is_upgrade((1000, month), (12_500, year)));
    }

    fn any_cadence() -> impl Strategy<Value = Cadence> {
        (0usize..4, 1u32..=12).prop_map(|(i, count)| Cadence {
            interval: Interval::ALL[i],
            count,
        })
    }

    const ZONES: [&str; 6] = [
        "UTC",
        "America/New_York",
        "Europe/Paris",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "Pacific/Chatham",
    ];

    proptest! {
        #[test]
        fn boundaries_rise_and_follow_the_anchor(
            secs in 1_700_000_000i64..2_000_000_000,
            zone_index in 0usize..6,
            cadence in any_cadence(),
            k in 0u32..60,
        ) {
            let anchor = DateTime::from_timestamp(secs, 0).expect("in range");
            let s = Schedule { anchor, zone: zone(ZONES[zone_index]).expect("a zone"), cadence };
            let a = s.boundary(k).expect("a boundary");
            let b = s.boundary(k + 1).expect("a boundary");
            prop_assert!(a < b, "{a} !< {b}");
            prop_assert_eq!(s.index_at(a), Some(k));
            prop_assert_eq!(s.index_at(b - chrono::Duration::seconds(1)), Some(k));
            if cadence.interval == Interval::Month || cadence.interval == Interval::Year {
                // The local day is the anchor's, or the month's last day when it has fewer.
                let tz = s.zone;
                let anchor_day = anchor.with_timezone(&tz).day();
                let local = a.with_timezone(&tz);
                let last = last_day(local.year(), local.month());
                prop_assert_eq!(local.day(), anchor_day.min(last));
            }
        }

        #[test]
        fn used_and_unused_add_up_and_stay_within_the_amount(
            amount in 0i64..10_000_000_000,
            length in 1i64..40_000_000,
            into in 0f64..=1.0,
        ) {
            let start = utc("2027-01-01T00:00:00Z");
            let end = start + chrono::Duration::seconds(length);
            let from = start + chrono::Duration::seconds((length as f64 * into) as i64);
            let unused = unused_share(amount, start, end, from);
            let used = amount - unused;
            prop_assert!((0..=amount).contains(&unused));
            prop_assert!((0..=amount).contains(&used));
            // A second later never leaves more unused.
            let later = unused_share(amount, start, end, from + chrono::Duration::seconds(1));
            prop_assert!(later <= unused, "{later} > {unused}");
        }
    }

    fn last_day(year: i32, month: u32) -> u32 {
        (28..=31)
            .rev()
            .find(|d| chrono::NaiveDate::from_ymd_opt(year, month, *d).is_some())
            .unwrap_or(28)
    }
}
