//! The live refresh of a minute view, at a fraction of a full read. A tab
//! asks every 5 s; reading the whole last hour each time costs about 64.5
//! read units at contact-center density (BENCHMARKS.md), 840 million a day
//! for 750 open tabs. Instead:
//! - `GET /api/dashboard?...&live=1` reads the range in two parts, the
//!   settled minutes and the last [`LIVE_MINUTES`], and hands the settled
//!   part to the page with the answer;
//! - every refresh after that is a `POST` of the same URL with that settled
//!   part as its body: only the live minutes are read, and the answer is
//!   the settled part and the fresh minutes put together by the same code as
//!   a full read. Sums of cells are sums of sums, so the two answers are
//!   equal when nothing older changed (a test holds them equal).
//!
//! Writes can still reach an older minute (a late event, a session's
//! enrichment, `active` spans reaching back up to 45 minutes): the page
//! reads the whole range again every minute, and the server refuses (409)
//! a settled part of another range, scope or org, or one older than
//! [`MAX_LIVE_SPAN_MS`]. The settled part is the viewer's own figures: a
//! page that altered it would only change its own view.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::kpi::Scope;
use crate::store::{Breakdown, Bucket};

use super::{DashboardError, Snapshot, View, bucket_for};

/// Minutes a live refresh reads: this one and the four before it.
pub const LIVE_MINUTES: i64 = 5;
/// The most a live refresh reads: a settled part split longer ago than
/// this is refused (the page reads whole again every minute).
pub const MAX_LIVE_SPAN_MS: i64 = 15 * 60_000;
/// The largest settled part accepted (a last-hour view at contact-center
/// density is tens of KB).
pub const MAX_SETTLED_BYTES: usize = 1 << 20;

/// The settled minutes of a live view: `[from_ms, split_ms)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    /// The org (`""`: a single-org deployment).
    pub org: String,
    /// The flow, or `None` for all flows.
    pub flow_id: Option<String>,
    /// The range's start.
    pub from_ms: i64,
    /// Where the live minutes start.
    pub split_ms: i64,
    /// The settled minutes' buckets.
    pub buckets: Vec<Bucket>,
    /// Per flow: its counters over the settled minutes.
    pub flows: BTreeMap<String, BTreeMap<String, i64>>,
}

/// Why a settled part cannot be used: the page reads whole again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the settled part is for another view or too old: {0}")]
pub struct Stale(pub &'static str);

/// The first live minute of a range ending at `to_ms` and starting at
/// `from_ms`.
pub fn split_of(from_ms: i64, to_ms: i64) -> i64 {
    let minute = to_ms - to_ms.rem_euclid(60_000);
    (minute - (LIVE_MINUTES - 1) * 60_000).max(from_ms)
}

impl Settled {
    /// Whether this settled part belongs to the view `org`, `scope`,
    /// `[from_ms, to_ms]`, and is recent enough.
    pub fn check(&self, org: &str, scope: &Scope, from_ms: i64, to_ms: i64) -> Result<(), Stale> {
        let flow = match scope {
            Scope::Org => None,
            Scope::Flow(f) => Some(f.as_str()),
        };
        if self.org != org || self.flow_id.as_deref() != flow {
            return Err(Stale("another org or flow"));
        }
        if self.from_ms != from_ms {
            return Err(Stale("the range moved"));
        }
        if bucket_for(to_ms.saturating_sub(from_ms)).0 != "minute" {
            return Err(Stale("not a minute view"));
        }
        if self.split_ms < from_ms
            || self.split_ms > to_ms
            || to_ms - self.split_ms > MAX_LIVE_SPAN_MS
        {
            return Err(Stale("split too long ago"));
        }
        if self
            .buckets
            .iter()
            .any(|b| b.minute_ms < from_ms || b.minute_ms >= self.split_ms)
        {
            return Err(Stale("a bucket outside the settled minutes"));
        }
        Ok(())
    }

    /// The whole range: the settled part and `live` (the minutes from the
    /// split), as one read of the whole would give.
    pub fn merge(&self, live: Breakdown) -> Breakdown {
        let mut flows = self.flows.clone();
        for (flow, counters) in live.flows {
            let sums = flows.entry(flow).or_default();
            for (k, v) in counters {
                let e = sums.entry(k).or_default();
                *e = e.saturating_add(v);
            }
        }
        let mut buckets = self.buckets.clone();
        buckets.extend(live.buckets);
        buckets.sort_by_key(|b| b.minute_ms);
        Breakdown {
            buckets,
            flows,
            reads: live.reads,
        }
    }
}

/// A minute view read in its two parts: the snapshot, with its settled part
/// attached. Other views are read whole, with none.
pub(crate) async fn snapshot_with_settled(
    view: &View<'_>,
    org: &str,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Result<Snapshot, DashboardError> {
    if bucket_for(to_ms.saturating_sub(from_ms)).0 != "minute" {
        let whole = view.store.query_rolled(view.scope, from_ms, to_ms).await?;
        return view.assemble(whole, from_ms, to_ms, now_ms).await;
    }
    let split = split_of(from_ms, to_ms);
    let mut part = if split > from_ms {
        view.store
            .query_breakdown(view.scope, from_ms, split - 1)
            .await?
    } else {
        Breakdown::default()
    };
    // Only the settled minutes: a read reaches later cells for `active`.
    part.buckets.retain(|b| b.minute_ms < split);
    let settled = Settled {
        org: org.to_string(),
        flow_id: match view.scope {
            Scope::Org => None,
            Scope::Flow(f) => Some(f.clone()),
        },
        from_ms,
        split_ms: split,
        buckets: part.buckets,
        flows: part.flows,
    };
    let fresh = view.store.query_breakdown(view.scope, split, to_ms).await?;
    let mut merged = settled.merge(fresh);
    merged.reads.merge(&part.reads);
    let snapshot = view.assemble(merged, from_ms, to_ms, now_ms).await?;
    Ok(Snapshot {
        settled: Some(settled),
        ..snapshot
    })
}

/// A live refresh: only the minutes from `settled`'s split are read.
pub(crate) async fn refresh(
    view: &View<'_>,
    settled: &Settled,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Result<Snapshot, DashboardError> {
    let fresh = view
        .store
        .query_breakdown(view.scope, settled.split_ms, to_ms)
        .await?;
    view.assemble(settled.merge(fresh), from_ms, to_ms, now_ms)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(minute_ms: i64, started: i64) -> Bucket {
        Bucket {
            minute_ms,
            counters: BTreeMap::from([("started".to_string(), started)]),
        }
    }

    #[test]
    fn the_live_minutes_are_the_last_five_within_the_range() {
        let to = 10 * 60_000 + 30_000;
        assert_eq!(split_of(0, to), 6 * 60_000);
        assert_eq!(split_of(8 * 60_000, to), 8 * 60_000);
    }

    #[test]
    fn a_merge_adds_the_flows_and_keeps_every_bucket_in_order() {
        let settled = Settled {
            org: String::new(),
            flow_id: None,
            from_ms: 0,
            split_ms: 120_000,
            buckets: vec![bucket(0, 1), bucket(60_000, 2)],
            flows: BTreeMap::from([("f".into(), BTreeMap::from([("started".into(), 3)]))]),
        };
        let live = Breakdown {
            buckets: vec![bucket(120_000, 4)],
            flows: BTreeMap::from([
                ("f".into(), BTreeMap::from([("started".into(), 4)])),
                ("g".into(), BTreeMap::from([("ended".into(), 1)])),
            ]),
            reads: Default::default(),
        };
        let merged = settled.merge(live);
        assert_eq!(
            merged.buckets,
            vec![bucket(0, 1), bucket(60_000, 2), bucket(120_000, 4)]
        );
        assert_eq!(merged.flows["f"]["started"], 7);
        assert_eq!(merged.flows["g"]["ended"], 1);
    }

    #[test]
    fn a_settled_part_of_another_view_or_too_old_is_refused() {
        let settled = Settled {
            org: "o".into(),
            flow_id: None,
            from_ms: 0,
            split_ms: 55 * 60_000,
            buckets: vec![bucket(0, 1)],
            flows: BTreeMap::new(),
        };
        let to = 59 * 60_000;
        assert_eq!(settled.check("o", &Scope::Org, 0, to), Ok(()));
        assert!(settled.check("p", &Scope::Org, 0, to).is_err());
        assert!(settled.check("o", &Scope::Flow("f".into()), 0, to).is_err());
        assert!(
            settled.check("o", &Scope::Org, 60_000, to).is_err(),
            "the range moved"
        );
        assert!(
            settled.check("o", &Scope::Org, 0, 71 * 60_000).is_err(),
            "too old"
        );
        let mut late = settled.clone();
        late.buckets.push(bucket(56 * 60_000, 1));
        assert!(
            late.check("o", &Scope::Org, 0, to).is_err(),
            "a live minute inside"
        );
    }
}
