//! Minutes, the duration histogram and "active" from span counters: how
//! counters are keyed and read back.

use std::collections::BTreeMap;

use super::attr;

/// Start of the minute containing `ms`.
pub fn minute_of(ms: i64) -> i64 {
    ms.saturating_sub(ms.rem_euclid(60_000))
}

/// The bucket item's sort key for a minute.
pub fn minute_sk(minute_ms: i64) -> String {
    format!("m#{:013}", minute_ms.max(0))
}

/// Upper bounds (seconds) of the duration histogram; the last bucket is `inf`.
pub const DURATION_BOUNDS_S: [u64; 18] = [
    5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 3600,
];

/// The histogram attribute a duration falls in.
pub fn duration_bucket(duration_ms: i64) -> String {
    let secs = (duration_ms.max(0) as u64).div_ceil(1000);
    match DURATION_BOUNDS_S.iter().find(|b| secs <= **b) {
        Some(b) => format!("{}{b}", attr::DURATION_BUCKET_PREFIX),
        None => format!("{}inf", attr::DURATION_BUCKET_PREFIX),
    }
}

/// Percentile (0..=100) of a duration histogram, as the bucket's upper bound in seconds.
pub fn duration_percentile(counters: &BTreeMap<String, i64>, p: f64) -> Option<u64> {
    let count = |b: &str| {
        counters
            .get(&format!("{}{b}", attr::DURATION_BUCKET_PREFIX))
            .copied()
            .unwrap_or(0)
            .max(0) as u64
    };
    let mut bounds: Vec<(Option<u64>, u64)> = DURATION_BOUNDS_S
        .iter()
        .map(|b| (Some(*b), count(&b.to_string())))
        .collect();
    bounds.push((None, count("inf")));
    let total: u64 = bounds.iter().fold(0u64, |a, (_, c)| a.saturating_add(*c));
    if total == 0 {
        return None;
    }
    let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
    let mut seen: u64 = 0;
    for (bound, c) in bounds {
        seen = seen.saturating_add(c);
        if seen >= rank {
            return Some(bound.unwrap_or(u64::MAX));
        }
    }
    None
}

/// The most minutes one session adds to "active"; readers look this far
/// past a range for the sessions that were active in it.
pub const MAX_ACTIVE_MINUTES: i64 = 45;

/// "Active" per minute from the `span_N` counters of the minutes each
/// session ended in: a session that ended in minute `k` and spans `N`
/// minutes was active in `k - N + 1 ..= k`. `ended` maps a minute start to
/// its counters; the result maps a minute start to its active sessions.
pub fn active_from_spans(ended: &BTreeMap<i64, BTreeMap<String, i64>>) -> BTreeMap<i64, i64> {
    let mut active: BTreeMap<i64, i64> = BTreeMap::new();
    for (&end, counters) in ended {
        for (name, &n) in counters {
            let Some(span) = name
                .strip_prefix(attr::SPAN_PREFIX)
                .and_then(|s| s.parse::<i64>().ok())
            else {
                continue;
            };
            for back in 0..span.clamp(1, MAX_ACTIVE_MINUTES) {
                let e: &mut i64 = active
                    .entry(end.saturating_sub(back.saturating_mul(60_000)))
                    .or_default();
                *e = e.saturating_add(n);
            }
        }
    }
    active.retain(|_, n| *n != 0);
    active
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_and_duration_buckets() {
        assert_eq!(minute_of(1_763_650_950_107), 1_763_650_920_000);
        assert_eq!(minute_of(-1), -60_000);
        assert_eq!(duration_bucket(0), "d_le_5");
        assert_eq!(duration_bucket(5_000), "d_le_5");
        assert_eq!(duration_bucket(5_001), "d_le_10");
        assert_eq!(duration_bucket(i64::MAX), "d_le_inf");
        let h: BTreeMap<String, i64> = [
            ("d_le_5".to_string(), 1),
            ("d_le_60".to_string(), 8),
            ("d_le_inf".to_string(), 1),
        ]
        .into();
        assert_eq!(duration_percentile(&h, 50.0), Some(60));
        assert_eq!(duration_percentile(&h, 10.0), Some(5));
        assert_eq!(duration_percentile(&h, 100.0), Some(u64::MAX));
        assert_eq!(duration_percentile(&BTreeMap::new(), 50.0), None);
    }
}
