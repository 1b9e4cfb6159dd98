//! The read path over roll-ups: whole rolled hours from their hour cells,
//! the rest of a range from minute cells.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use super::cells::ORG_ONLY;
use super::keys::parse_cell_sk;
use super::pages::Read;
use super::read::numbers;
use super::rollup::{HOUR_MS, ORG_ACTIVE, hour_of};
use super::{AnalyticsError, AnalyticsStore, Breakdown, ReadStats, key};
use crate::kpi::{Scope, attr, minute_of};

/// At most this many stretches of minute cells in a rolled read (16 queries
/// each): the range's head, its tail, and two dirty hours between.
const MAX_STRETCHES: usize = 4;

/// Counters by name.
type Sums = BTreeMap<String, i64>;

/// A rolled read's buckets (by minute or hour start) and flow totals.
#[derive(Debug, Default)]
struct Gathered {
    buckets: BTreeMap<i64, Sums>,
    flows: BTreeMap<String, Sums>,
}

impl AnalyticsStore {
    /// [`Self::query_breakdown`] with whole rolled-up hours read from their
    /// hour cells (one `Query`) and only the rest (edge hours, the hours
    /// not rolled up yet, dirty ones) from minute cells. Buckets of rolled
    /// hours start at the hour and carry its sums (`active`: its peak).
    pub async fn query_rolled(
        &self,
        scope: &Scope,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Breakdown, AnalyticsError> {
        let (from, to) = (minute_of(from_ms), minute_of(to_ms));
        let mut reads = ReadStats::default();
        let span = self.rolled_span(&mut reads).await?;
        // A mark read late only sends an hour to its minute cells.
        let (marks, mark_reads) = self.dirty_hours(false).await?;
        reads.merge(&mark_reads);
        let dirty: BTreeSet<i64> = marks.into_keys().collect();
        let mut rolled = span.map_or_else(BTreeSet::new, |s| rolled_hours(from, to, s, &dirty));
        let stretches = stretches(from, to, &mut rolled);
        let want = match scope {
            Scope::Org => None,
            Scope::Flow(f) => Some(f.as_str()),
        };
        let mut gathered = Gathered::default();
        reads.merge(&self.read_hour_cells(want, &rolled, &mut gathered).await?);
        for (a, b) in stretches {
            let part = self.query_breakdown(scope, a, b).await?;
            reads.merge(&part.reads);
            for bucket in part.buckets {
                gathered.buckets.insert(bucket.minute_ms, bucket.counters);
            }
            for (f, t) in part.flows {
                let into = gathered.flows.entry(f).or_default();
                for (k, n) in t {
                    let e: &mut i64 = into.entry(k).or_default();
                    *e = e.saturating_add(n);
                }
            }
        }
        Ok(Breakdown::new(gathered.buckets, gathered.flows, reads))
    }

    /// The span of rolled hours (first, last) as saved by the roll-up, read
    /// strongly consistent; `None` before the first roll-up.
    async fn rolled_span(
        &self,
        reads: &mut ReadStats,
    ) -> Result<Option<(i64, i64)>, AnalyticsError> {
        let mut span = None;
        let stats = self
            .each_item(
                "Query (roll-up state)",
                &self.hours_pk(),
                "#sk = :s",
                &[(":s", "state".into())],
                Read {
                    consistent: true,
                    ..Read::default()
                },
                |item| {
                    let n = |k: &str| {
                        item.get(k)
                            .and_then(|v| v.as_n().ok())
                            .and_then(|n| n.parse::<i64>().ok())
                    };
                    span = n("rolled_from").zip(n("rolled_to"));
                    true
                },
            )
            .await?;
        reads.merge(&stats);
        Ok(span)
    }

    /// The hour cells of the `rolled` hours, into `gathered` (one `Query`).
    async fn read_hour_cells(
        &self,
        want: Option<&str>,
        rolled: &BTreeSet<i64>,
        gathered: &mut Gathered,
    ) -> Result<ReadStats, AnalyticsError> {
        let (Some(first), Some(last)) = (rolled.first(), rolled.last()) else {
            return Ok(ReadStats::default());
        };
        self.each_item(
            "Query (hour cells)",
            &self.hours_pk(),
            "#sk BETWEEN :from AND :to",
            &[
                (":from", format!("h#{first:013}")),
                (":to", format!("h#{last:013}#~")),
            ],
            // Strongly consistent: a re-roll writes the cells before it
            // deletes the mark, so an answer that no longer sees the mark
            // sees the new cells.
            Read {
                consistent: true,
                ..Read::default()
            },
            |item| {
                let cell = item
                    .get(key::SK)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|sk| sk.strip_prefix("h#"))
                    .and_then(|rest| parse_cell_sk(&format!("m#{rest}")));
                if let Some((hour, flow)) = cell
                    && rolled.contains(&hour)
                {
                    gathered.add_hour_cell(want, hour, flow.as_deref(), item);
                }
                true
            },
        )
        .await
    }
}

impl Gathered {
    /// An hour cell's counters, into the flow's totals and, when the
    /// scope wants it, the hour's bucket.
    fn add_hour_cell(
        &mut self,
        want: Option<&str>,
        hour: i64,
        flow: Option<&str>,
        item: &HashMap<String, AttributeValue>,
    ) {
        if let Some(f) = flow {
            // A cell with only `active` (a session seen in the next hour)
            // adds no row, as in minutes.
            for (k, n) in numbers(item) {
                if k != attr::ACTIVE && !ORG_ONLY.contains(&k.as_str()) {
                    let t = self.flows.entry(f.to_string()).or_default();
                    let e: &mut i64 = t.entry(k.clone()).or_default();
                    *e = e.saturating_add(n);
                }
            }
        }
        let counts = match (want, flow) {
            (None, _) => true,
            (Some(w), Some(f)) => w == f,
            (Some(_), None) => false,
        };
        if !counts {
            return;
        }
        let b = self.buckets.entry(hour).or_default();
        for (k, n) in numbers(item) {
            if want.is_some() && ORG_ONLY.contains(&k.as_str()) {
                continue;
            }
            let name = match (want, k.as_str()) {
                (None, attr::ACTIVE) => continue,
                (None, ORG_ACTIVE) => attr::ACTIVE,
                (Some(_), ORG_ACTIVE) => continue,
                (_, other) => other,
            };
            let e: &mut i64 = b.entry(name.to_string()).or_default();
            *e = if name == attr::ACTIVE {
                (*e).max(n)
            } else {
                e.saturating_add(n)
            };
        }
    }
}

/// The whole hours of `from..=to` inside the rolled span and not dirty.
fn rolled_hours(from: i64, to: i64, span: (i64, i64), dirty: &BTreeSet<i64>) -> BTreeSet<i64> {
    let (first_rolled, last_rolled) = span;
    let mut out = BTreeSet::new();
    let mut h = hour_of(from);
    while h <= to {
        if h >= from
            && h + HOUR_MS - 60_000 <= to
            && (first_rolled..=last_rolled).contains(&h)
            && !dirty.contains(&h)
        {
            out.insert(h);
        }
        h += HOUR_MS;
    }
    out
}

/// The stretches of `from..=to` between `rolled` hours, read from minute
/// cells. Past a few (many dirty hours), the last one runs to the end of
/// the range and the rolled hours it covers are dropped, so the queries
/// stay bounded.
fn stretches(from: i64, to: i64, rolled: &mut BTreeSet<i64>) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    let mut m = from;
    while m <= to {
        if rolled.contains(&hour_of(m)) {
            m = hour_of(m) + HOUR_MS;
            continue;
        }
        if out.len() + 1 == MAX_STRETCHES {
            rolled.retain(|h| *h < m);
            out.push((m, to));
            break;
        }
        let end = rolled
            .range(m..)
            .next()
            .map_or(to, |h| (h - 60_000).min(to));
        out.push((m, end));
        m = end + 60_000;
    }
    out
}
