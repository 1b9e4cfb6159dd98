//! The read path: a range's minute cells merged into buckets and flow totals.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use super::cells::ORG_ONLY;
use super::keys::parse_cell_sk;
use super::pages::Read;
use super::{AnalyticsError, AnalyticsStore, BUCKET_SHARDS, ReadStats, key};
use crate::kpi::{MAX_ACTIVE_MINUTES, Scope, active_from_spans, attr, minute_of, minute_sk};

/// One bucket as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Bucket {
    /// Minute start, epoch ms.
    pub minute_ms: i64,
    /// Counter name -> value.
    pub counters: BTreeMap<String, i64>,
}

/// Minute cells as read: (minute, flow) and the cell's numbers.
pub(super) type MinuteCells = Vec<((i64, Option<String>), Vec<(String, i64)>)>;

/// One range's buckets, each flow's totals, and the cost of reading them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Breakdown {
    /// The scope's buckets, per minute.
    pub buckets: Vec<Bucket>,
    /// Per flow id: its counters summed over the range.
    pub flows: BTreeMap<String, BTreeMap<String, i64>>,
    /// What the reads cost.
    pub reads: ReadStats,
}

impl Breakdown {
    pub(super) fn new(
        buckets: BTreeMap<i64, BTreeMap<String, i64>>,
        flows: BTreeMap<String, BTreeMap<String, i64>>,
        reads: ReadStats,
    ) -> Self {
        Self {
            buckets: buckets
                .into_iter()
                .map(|(minute_ms, counters)| Bucket {
                    minute_ms,
                    counters,
                })
                .collect(),
            flows,
            reads,
        }
    }
}

impl AnalyticsStore {
    /// Buckets of one scope with `from_ms <= minute <= to_ms`, "active"
    /// derived from the sessions that ended up to [`MAX_ACTIVE_MINUTES`]
    /// later: one `Query` per shard, in parallel (paged), merged.
    pub async fn query(
        &self,
        scope: &Scope,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Bucket>, AnalyticsError> {
        Ok(self.query_breakdown(scope, from_ms, to_ms).await?.buckets)
    }

    /// [`Self::query`], and from the same reads each flow's totals over the
    /// range and what the reads cost.
    pub async fn query_breakdown(
        &self,
        scope: &Scope,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Breakdown, AnalyticsError> {
        let (from, to) = (minute_of(from_ms), minute_of(to_ms));
        let read_to = to.saturating_add((MAX_ACTIVE_MINUTES - 1) * 60_000);
        let (cells, stats) = self.minute_cells(from, read_to, false).await?;
        let flow = match scope {
            Scope::Org => None,
            Scope::Flow(f) => Some(f.as_str()),
        };
        let mut merged: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
        let mut flows: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        let org_only = |k: &str| ORG_ONLY.contains(&k);
        for ((minute, cell_flow), counters) in &cells {
            if let Some(f) = cell_flow
                && (from..=to).contains(minute)
            {
                for (k, n) in counters {
                    if !k.starts_with(attr::SPAN_PREFIX) && !org_only(k) {
                        let totals = flows.entry(f.clone()).or_default();
                        let e: &mut i64 = totals.entry(k.clone()).or_default();
                        *e = e.saturating_add(*n);
                    }
                }
            }
            if flow.is_some() && cell_flow.as_deref() != flow {
                continue;
            }
            let into = merged.entry(*minute).or_default();
            for (k, n) in counters {
                if flow.is_none() || !org_only(k) {
                    let e: &mut i64 = into.entry(k.clone()).or_default();
                    *e = e.saturating_add(*n);
                }
            }
        }
        let active = active_from_spans(&merged);
        let mut out: BTreeMap<i64, BTreeMap<String, i64>> = merged
            .into_iter()
            .filter(|(m, _)| (from..=to).contains(m))
            .map(|(m, mut c)| {
                c.retain(|name, _| !name.starts_with(attr::SPAN_PREFIX));
                (m, c)
            })
            .collect();
        for (m, n) in active.range(from..=to) {
            out.entry(*m).or_default().insert(attr::ACTIVE.into(), *n);
        }
        Ok(Breakdown::new(out, flows, stats))
    }
    /// Every shard's minute cells from `from` to `to` (minute starts), each
    /// with its numbers only (a long range holds many cells): one `Query`
    /// per shard, in parallel.
    pub(super) async fn minute_cells(
        &self,
        from: i64,
        to: i64,
        consistent: bool,
    ) -> Result<(MinuteCells, ReadStats), AnalyticsError> {
        let reads = (0..BUCKET_SHARDS).map(|shard| async move {
            let mut cells = Vec::new();
            self.each_item(
                "Query (buckets)",
                &self.shard_pk(shard),
                "#sk BETWEEN :from AND :to",
                &[
                    (":from", minute_sk(from)),
                    (":to", format!("{}#~", minute_sk(to))),
                ],
                Read {
                    consistent,
                    ..Read::default()
                },
                |item| {
                    if let Some(sk) = item.get(key::SK).and_then(|v| v.as_s().ok())
                        && let Some(cell) = parse_cell_sk(sk)
                    {
                        let counters: Vec<(String, i64)> =
                            numbers(item).map(|(k, n)| (k.clone(), n)).collect();
                        cells.push((cell, counters));
                    }
                    true
                },
            )
            .await
            .map(|stats| (cells, stats))
        });
        let mut cells = Vec::new();
        let mut stats = ReadStats::default();
        for shard in futures::future::join_all(reads).await {
            let (c, s) = shard?;
            cells.extend(c);
            stats.merge(&s);
        }
        Ok((cells, stats))
    }
}

/// A bucket item's counters.
pub(super) fn numbers(
    item: &HashMap<String, AttributeValue>,
) -> impl Iterator<Item = (&String, i64)> {
    item.iter()
        .filter(|(k, _)| ![key::PK, key::SK, key::TTL].contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k, v.as_n().ok()?.parse::<i64>().ok()?)))
}
