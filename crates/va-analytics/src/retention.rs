//! How long cells live. Every minute cell and every hour cell carries a
//! `ttl` (epoch seconds): its minute (or hour) plus the retention, written
//! with the same value on every update, so DynamoDB's TTL deletes it after
//! that (typically within a few days: Developer Guide, "Time to Live").
//! Markers, states and pending enrichments already carry theirs.
//!
//! The defaults keep every view the page offers whole: minute cells 35 days
//! (the 31-day view's edges and any minute view of the last month), hour
//! cells 400 days (13 months: a year back and the month it started).

use lambda_support::{ConfigErrors, Env};

/// Variable: days a minute cell lives (the template's
/// `MinuteCellRetentionDays`).
pub const MINUTE_CELL_RETENTION_DAYS: &str = "MINUTE_CELL_RETENTION_DAYS";
/// Variable: days an hour cell lives (`HourCellRetentionDays`).
pub const HOUR_CELL_RETENTION_DAYS: &str = "HOUR_CELL_RETENTION_DAYS";

const DAY_S: i64 = 86_400;
/// The shortest retention accepted: a roll-up reads minute cells up to 32
/// days back ([`crate::store::SEAL_AFTER_MS`] and its backfill), and the
/// longest range a view shows is 31 days.
pub const MIN_DAYS: u64 = 32;
/// The longest: ten years.
pub const MAX_DAYS: u64 = 3_660;

/// How long each kind of cell lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Days a minute cell lives after its minute.
    pub minute_cell_days: u64,
    /// Days an hour cell lives after its hour.
    pub hour_cell_days: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            minute_cell_days: 35,
            hour_cell_days: 400,
        }
    }
}

impl Retention {
    /// From `MINUTE_CELL_RETENTION_DAYS` and `HOUR_CELL_RETENTION_DAYS`
    /// (defaults when unset).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let mut env = Env::new(get);
        let d = Self::default();
        let minute_cell_days = env.number(
            MINUTE_CELL_RETENTION_DAYS,
            d.minute_cell_days,
            MIN_DAYS..=MAX_DAYS,
        );
        let hour_cell_days = env.number(
            HOUR_CELL_RETENTION_DAYS,
            d.hour_cell_days,
            MIN_DAYS..=MAX_DAYS,
        );
        env.finish(Self {
            minute_cell_days,
            hour_cell_days,
        })
    }

    /// The `ttl` of the minute cell of `minute_ms`.
    pub fn minute_cell_ttl(&self, minute_ms: i64) -> i64 {
        ttl(minute_ms, self.minute_cell_days)
    }

    /// The `ttl` of the hour cell of `hour_ms`.
    pub fn hour_cell_ttl(&self, hour_ms: i64) -> i64 {
        ttl(hour_ms, self.hour_cell_days)
    }
}

fn ttl(start_ms: i64, days: u64) -> i64 {
    let days = i64::try_from(days).unwrap_or(i64::MAX / DAY_S);
    start_ms
        .div_euclid(1000)
        .saturating_add(days.saturating_mul(DAY_S))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_lives_its_retention_after_its_minute_or_hour() {
        let r = Retention::default();
        let minute = 1_795_186_980_000;
        assert_eq!(r.minute_cell_ttl(minute), minute / 1000 + 35 * DAY_S);
        assert_eq!(r.hour_cell_ttl(minute), minute / 1000 + 400 * DAY_S);
    }

    #[test]
    fn retentions_come_from_the_environment_within_bounds() {
        let r = Retention::from_lookup(|k| match k {
            MINUTE_CELL_RETENTION_DAYS => Some("40".into()),
            HOUR_CELL_RETENTION_DAYS => Some("730".into()),
            _ => None,
        })
        .expect("valid");
        assert_eq!((r.minute_cell_days, r.hour_cell_days), (40, 730));
        assert_eq!(
            Retention::from_lookup(|_| None).expect("defaults"),
            Retention::default()
        );
        let short =
            Retention::from_lookup(|k| (k == MINUTE_CELL_RETENTION_DAYS).then(|| "7".to_string()));
        assert!(short.is_err(), "shorter than a 31-day view");
    }
}
