//! The migration of the first layout's cells (before sharding, layout 1) to
//! the sharded cells every reader reads (`va-admin migrate`).
//!
//! Layout 1 kept one cell per minute for the org (`pk = agg#org`) and one
//! per minute and flow (`pk = agg#flow#<flowId>`), `sk = m#<minute>`, with
//! `active` stored as a counter. A minute migrates to shard 0 of the sharded
//! layout: a cell per flow (that flow's counters), and a cell without flow
//! holding the org's counters less its flows'; `active` becomes `span_1`
//! (one session active in that minute only), which readers turn back into
//! the same `active`. One transaction per minute adds the new cells, marks
//! the minute's hour for the roll-up to fold in again, and deletes the old
//! cells on condition they still exist: a minute migrates exactly once, and
//! a run stopped half way is finished by running it again.
//!
//! Finding layout-1 cells is a `Scan` (filtered to their partitions): the
//! layout has no index of its flows, and a migration runs once. A finished
//! run records the table's layout ([`crate::layout::record`]).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use serde::Serialize;

use crate::kpi::attr;
use crate::store::{AnalyticsError, AnalyticsStore, key};

/// The org cell's partition in layout 1.
const V1_ORG: &str = "agg#org";
/// A flow cell's partition prefix in layout 1.
const V1_FLOW: &str = "agg#flow#";

/// One layout-1 minute: the org's counters and each flow's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V1Minute {
    /// The org's cell, if there is one.
    pub org: Option<BTreeMap<String, i64>>,
    /// Each flow's cell.
    pub flows: BTreeMap<String, BTreeMap<String, i64>>,
}

/// What a migration found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    /// Layout-1 minutes found.
    pub minutes: usize,
    /// Layout-1 cells found.
    pub cells: usize,
    /// Minutes migrated now (0 in a dry run).
    pub migrated: usize,
    /// Minutes another run migrated meanwhile (their cells were gone).
    pub already: usize,
}

/// The sharded cells of one layout-1 minute: per flow, and the rest of the
/// org's counters without a flow; `active` as `span_1`. Counters the flows'
/// sum exceeds (never in data layout 1 wrote) are left out of the rest.
pub fn sharded_cells(m: &V1Minute) -> BTreeMap<Option<String>, BTreeMap<String, i64>> {
    let rename = |c: &BTreeMap<String, i64>| -> BTreeMap<String, i64> {
        c.iter()
            .map(|(k, v)| {
                let k = if k == attr::ACTIVE {
                    format!("{}1", attr::SPAN_PREFIX)
                } else {
                    k.clone()
                };
                (k, *v)
            })
            .collect()
    };
    let mut out = BTreeMap::new();
    let mut rest = m.org.as_ref().map(rename).unwrap_or_default();
    for (flow, counters) in &m.flows {
        let counters = rename(counters);
        for (k, v) in &counters {
            if let Some(r) = rest.get_mut(k) {
                *r = r.saturating_sub(*v);
            }
        }
        out.insert(Some(flow.clone()), counters);
    }
    rest.retain(|_, v| *v > 0);
    if !rest.is_empty() {
        out.insert(None, rest);
    }
    out.retain(|_, c| c.values().any(|v| *v != 0));
    out
}

/// The layout-1 cells of the implicit org's store, and their migration.
pub struct V1Migration {
    store: AnalyticsStore,
}

impl V1Migration {
    /// Over `store` (the implicit org: layout 1 had no orgs).
    pub fn new(store: &AnalyticsStore) -> Self {
        Self {
            store: store.for_org(""),
        }
    }

    /// Every layout-1 minute, by minute start (one filtered `Scan`).
    pub async fn find(&self) -> Result<BTreeMap<i64, V1Minute>, AnalyticsError> {
        let mut out: BTreeMap<i64, V1Minute> = BTreeMap::new();
        let mut start = None;
        loop {
            let page = self
                .store
                .client()
                .scan()
                .table_name(self.store.table())
                .filter_expression("#pk = :org OR begins_with(#pk, :flow)")
                .expression_attribute_names("#pk", key::PK)
                .expression_attribute_values(":org", AttributeValue::S(V1_ORG.into()))
                .expression_attribute_values(":flow", AttributeValue::S(V1_FLOW.into()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| {
                    self.store
                        .dynamodb("Scan (layout 1)", DisplayErrorContext(e))
                })?;
            for item in page.items() {
                add(&mut out, item);
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Counts the layout-1 cells, and migrates them unless `dry_run`.
    pub async fn run(&self, dry_run: bool) -> Result<MigrationReport, AnalyticsError> {
        // Never over a layout newer than this release's.
        crate::layout::check(&self.store).await?;
        let found = self.find().await?;
        let mut report = MigrationReport {
            minutes: found.len(),
            cells: found
                .values()
                .map(|m| usize::from(m.org.is_some()) + m.flows.len())
                .sum(),
            ..MigrationReport::default()
        };
        if dry_run {
            return Ok(report);
        }
        for (minute, m) in &found {
            if self.migrate_minute(*minute, m).await? {
                report.migrated += 1;
            } else {
                report.already += 1;
            }
        }
        crate::layout::record(&self.store).await?;
        Ok(report)
    }

    /// One minute in one transaction; `false` when its cells were gone
    /// (migrated by another run).
    async fn migrate_minute(&self, minute: i64, m: &V1Minute) -> Result<bool, AnalyticsError> {
        let invalid = |e: String| AnalyticsError::Invalid { reason: e };
        let shard = self.store.shard_pk(0);
        let mut tx = self.store.client().transact_write_items();
        for (flow, counters) in sharded_cells(m) {
            let update = self
                .store
                .cell_update(&shard, minute, flow.as_deref(), &counters)
                .map_err(invalid)?;
            tx = tx.transact_items(TransactWriteItem::builder().update(update).build());
        }
        let hour = minute - minute.rem_euclid(3_600_000);
        let mark = self.store.dirty_update(hour, 0).map_err(invalid)?;
        tx = tx.transact_items(TransactWriteItem::builder().update(mark).build());
        let old = m
            .org
            .iter()
            .map(|_| V1_ORG.to_string())
            .chain(m.flows.keys().map(|f| format!("{V1_FLOW}{f}")));
        for pk in old {
            let delete = Delete::builder()
                .table_name(self.store.table())
                .key(key::PK, AttributeValue::S(pk))
                .key(key::SK, AttributeValue::S(crate::kpi::minute_sk(minute)))
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", key::PK)
                .build()
                .map_err(|e| invalid(e.to_string()))?;
            tx = tx.transact_items(TransactWriteItem::builder().delete(delete).build());
        }
        match tx.send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let text = DisplayErrorContext(&e).to_string();
                if text.contains("ConditionalCheckFailed") {
                    Ok(false)
                } else {
                    Err(self
                        .store
                        .dynamodb("TransactWriteItems (migration)", DisplayErrorContext(e)))
                }
            }
        }
    }
}

/// Adds one layout-1 item to its minute.
fn add(out: &mut BTreeMap<i64, V1Minute>, item: &HashMap<String, AttributeValue>) {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let (Some(pk), Some(sk)) = (text(key::PK), text(key::SK)) else {
        return;
    };
    let Some(minute) = sk.strip_prefix("m#").and_then(|m| m.parse::<i64>().ok()) else {
        return;
    };
    let counters: BTreeMap<String, i64> = item
        .iter()
        .filter(|(k, _)| ![key::PK, key::SK, key::TTL].contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.clone(), v.as_n().ok()?.parse().ok()?)))
        .collect();
    let entry = out.entry(minute).or_default();
    if pk == V1_ORG {
        entry.org = Some(counters);
    } else if let Some(flow) = pk.strip_prefix(V1_FLOW) {
        entry.flows.insert(flow.to_string(), counters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn a_minute_becomes_its_flows_cells_and_the_rest_without_a_flow() {
        let m = V1Minute {
            org: Some(counters(&[("started", 5), ("events", 9), ("active", 4)])),
            flows: BTreeMap::from([
                ("a".to_string(), counters(&[("started", 2), ("active", 1)])),
                ("b".to_string(), counters(&[("started", 1), ("active", 2)])),
            ]),
        };
        let cells = sharded_cells(&m);
        assert_eq!(
            cells[&Some("a".into())],
            counters(&[("started", 2), ("span_1", 1)])
        );
        assert_eq!(
            cells[&Some("b".into())],
            counters(&[("started", 1), ("span_1", 2)])
        );
        assert_eq!(
            cells[&None],
            counters(&[("started", 2), ("events", 9), ("span_1", 1)])
        );
    }

    #[test]
    fn an_org_cell_its_flows_cover_adds_no_cell_without_a_flow() {
        let m = V1Minute {
            org: Some(counters(&[("started", 2)])),
            flows: BTreeMap::from([("a".to_string(), counters(&[("started", 2)]))]),
        };
        assert_eq!(sharded_cells(&m).len(), 1);
    }
}
