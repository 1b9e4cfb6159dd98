//! Which minutes a view covers: checked ranges, the page's presets, and the
//! bucket (minute, hour, day) a range is shown in.

use std::collections::BTreeMap;

use super::{DEFAULT_MINUTES, Point};
use crate::kpi::attr;
use crate::store::Bucket;

/// The bucket that fits a range of `span_ms`: minutes up to 6 hours, hours
/// up to 8 days, days beyond (at most 31 of them): no chart has more than
/// 360 points, and the choice is the API's, not the page's.
pub fn bucket_for(span_ms: i64) -> (&'static str, i64) {
    if span_ms <= 6 * 3_600_000 {
        ("minute", 60_000)
    } else if span_ms <= 8 * 86_400_000 {
        ("hour", 3_600_000)
    } else {
        ("day", 86_400_000)
    }
}

/// Minute buckets summed into `bucket_ms` buckets (UTC-aligned) from the
/// bucket of `from_ms` to that of `to_ms`, every bucket present (empty ones
/// without counters: charts keep time's spacing); `active`, a level, takes
/// the bucket's peak.
pub fn rebucket(buckets: &[Bucket], bucket_ms: i64, from_ms: i64, to_ms: i64) -> Vec<Point> {
    let bucket_ms = bucket_ms.max(60_000);
    let align = |t: i64| t - t.rem_euclid(bucket_ms);
    let mut out: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
    let (first, last) = (align(from_ms), align(to_ms));
    // At most 31 days of minutes: bounded.
    if last >= first && (last - first) / bucket_ms <= MAX_RANGE_MS / 60_000 {
        let mut t = first;
        while t <= last {
            out.insert(t, BTreeMap::new());
            t += bucket_ms;
        }
    }
    for b in buckets {
        let start = align(b.minute_ms);
        let point = out.entry(start).or_default();
        for (k, v) in &b.counters {
            let e: &mut i64 = point.entry(k.clone()).or_default();
            *e = if k == attr::ACTIVE {
                (*e).max(*v)
            } else {
                e.saturating_add(*v)
            };
        }
    }
    out.into_iter()
        .map(|(start_ms, counters)| Point { start_ms, counters })
        .collect()
}

/// The widest range one request may read.
pub const MAX_RANGE_MS: i64 = 31 * 86_400_000;

/// A checked `[from, to]`: both within 2000..2100, ordered, at most
/// [`MAX_RANGE_MS`] apart. `minutes` (back from `to`) applies when `from`
/// is absent.
pub fn range(
    from: Option<i64>,
    to: Option<i64>,
    minutes: Option<i64>,
    now_ms: i64,
) -> Result<(i64, i64), &'static str> {
    let sane = va_events::MIN_EVENT_TIME_MS..va_events::MAX_EVENT_TIME_MS;
    let to = to.unwrap_or(now_ms);
    if !sane.contains(&to) || from.is_some_and(|f| !sane.contains(&f)) {
        return Err("`from` and `to` must be epoch milliseconds between 2000 and 2100");
    }
    let from = match from {
        Some(f) => f,
        None => {
            let minutes = minutes.unwrap_or(DEFAULT_MINUTES);
            if !(1..=MAX_RANGE_MS / 60_000).contains(&minutes) {
                return Err("`minutes` must be from 1 to 44640 (31 days)");
            }
            to.checked_sub(minutes.saturating_mul(60_000))
                .ok_or("the range must be ordered and at most 31 days")?
        }
    };
    match to.checked_sub(from) {
        Some(span) if (0..=MAX_RANGE_MS).contains(&span) => Ok((from, to)),
        _ => Err("the range must be ordered and at most 31 days"),
    }
}

/// The presets the page offers, ending now: `last_hour`, `today` (since
/// 00:00 UTC), `7d`, `31d`.
pub fn preset_range(preset: &str, now_ms: i64) -> Result<(i64, i64), &'static str> {
    // Whole buckets: 60 minutes to this one, 7 days of whole hours, 31 of
    // whole days (the last one running), so no point is a partial one.
    let (hour, day) = (3_600_000, 86_400_000);
    let from = match preset {
        "last_hour" => (now_ms - now_ms.rem_euclid(60_000)).saturating_sub(59 * 60_000),
        "today" => now_ms - now_ms.rem_euclid(day),
        "7d" => (now_ms - now_ms.rem_euclid(hour)).saturating_sub(7 * 24 * hour - hour),
        "31d" => (now_ms - now_ms.rem_euclid(day)).saturating_sub(30 * day),
        _ => return Err("`range` must be last_hour, today, 7d or 31d"),
    };
    range(Some(from), Some(now_ms), None, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_187_012_345;

    #[test]
    fn the_api_picks_the_bucket_and_sums_into_it_keeping_peaks() {
        assert_eq!(bucket_for(3_600_000).0, "minute");
        assert_eq!(bucket_for(6 * 3_600_000).0, "minute");
        assert_eq!(bucket_for(86_400_000).0, "hour");
        assert_eq!(bucket_for(7 * 86_400_000).0, "hour");
        assert_eq!(bucket_for(MAX_RANGE_MS).0, "day");
        for span in [3_600_000, 86_400_000, 7 * 86_400_000, MAX_RANGE_MS] {
            let (_, ms) = bucket_for(span);
            assert!(span / ms <= 360, "{span}: at most 360 points");
        }
        let minute = |m: i64, started: i64, active: i64| Bucket {
            minute_ms: m,
            counters: BTreeMap::from([
                (attr::STARTED.to_string(), started),
                (attr::ACTIVE.to_string(), active),
            ]),
        };
        let hour = 3_600_000;
        let points = rebucket(
            &[
                minute(10 * hour, 2, 5),
                minute(10 * hour + 60_000, 3, 9),
                minute(11 * hour, 4, 1),
            ],
            hour,
            10 * hour,
            13 * hour - 1,
        );
        assert_eq!(
            points.len(),
            3,
            "every hour of the range, the empty one too"
        );
        assert!(points[2].counters.is_empty());
        assert_eq!(points[0].start_ms, 10 * hour);
        assert_eq!(points[0].counters[attr::STARTED], 5, "sums");
        assert_eq!(points[0].counters[attr::ACTIVE], 9, "the peak, not a sum");
        assert_eq!(points[1].counters[attr::STARTED], 4);
    }

    #[test]
    fn presets_end_now_and_today_starts_at_utc_midnight() {
        let day = 86_400_000;
        let now = 20_000 * day + 5 * 3_600_000;
        let now = now + 90_500; // mid-minute
        let hour = 3_600_000;
        let minute_now = now - now % 60_000;
        assert_eq!(
            preset_range("last_hour", now),
            Ok((minute_now - 59 * 60_000, now))
        );
        assert_eq!(preset_range("today", now), Ok((20_000 * day, now)));
        let this_hour = now - now % hour;
        assert_eq!(preset_range("7d", now), Ok((this_hour - 167 * hour, now)));
        assert_eq!(preset_range("31d", now), Ok((20_000 * day - 30 * day, now)));
        // Whole buckets only: 60 minutes, 168 hours, 31 days of points.
        let points = |p: &str| {
            let (f, t) = preset_range(p, now).expect("preset");
            let (_, ms) = bucket_for(t - f);
            rebucket(&[], ms, f, t).len()
        };
        assert_eq!(
            (points("last_hour"), points("7d"), points("31d")),
            (60, 168, 31)
        );
        assert!(preset_range("forever", now).is_err());
    }

    #[test]
    fn ranges_are_checked_not_wrapped() {
        assert_eq!(range(None, None, None, NOW), Ok((NOW - 180 * 60_000, NOW)));
        assert_eq!(
            range(Some(NOW - 1), Some(NOW), None, NOW),
            Ok((NOW - 1, NOW))
        );
        for (from, to, minutes) in [
            (Some(i64::MIN), Some(i64::MAX), None),
            (Some(i64::MAX), Some(i64::MIN), None),
            (Some(0), Some(NOW), None),
            (Some(NOW), Some(NOW - 1), None),
            (Some(NOW - MAX_RANGE_MS - 1), Some(NOW), None),
            (None, Some(NOW), Some(0)),
            (None, Some(NOW), Some(i64::MAX)),
            (None, Some(NOW), Some(-5)),
            (None, Some(i64::MAX), None),
        ] {
            assert!(
                range(from, to, minutes, NOW).is_err(),
                "{from:?} {to:?} {minutes:?}"
            );
        }
    }
}
