//! The exactly-once write path: an event's marker, its conversation's
//! state, pending enrichments, cells and dirty marks, all in one
//! transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, Update};
use serde::Serialize;

use super::keys::{STATE_SK, cell_sk, pending_sk};
use super::transaction::{Refused, Slot, Transaction};
use super::{AnalyticsError, AnalyticsStore, BUCKET_SHARDS, cells, key, late_hours};
use crate::kpi::{PendingEnrichment, Plan};
use crate::org_items::ORG_SHARD;

/// Whether an event was counted by this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// Counted now.
    Processed,
    /// Counted before (its marker exists).
    Duplicate,
    /// Not counted, on purpose: its org is offboarded (its data purged).
    Dropped,
}

/// Event markers' `ttl`: the DLQ keeps a failed event 14 days (the
/// template's `MessageRetentionPeriod`), so a redriven event must still find
/// its marker then; two days of margin.
pub const MARKER_TTL_S: i64 = 16 * 86_400;

/// Cells keyed by (minute start, flow), with the counters to add.
type CellDeltas = BTreeMap<(i64, Option<String>), BTreeMap<String, i64>>;

/// Which conversation a plan's state belongs to.
fn plan_conversation(plan: &Plan, resolves: Option<&PendingEnrichment>) -> Option<String> {
    plan.conversation_id
        .clone()
        .or_else(|| resolves.map(|p| p.conversation_id.clone()))
}

impl AnalyticsStore {
    /// Everything `plan` changes in one `TransactWriteItems`, all or
    /// nothing: the marker (refused if it exists: a duplicate), the
    /// conversation's state (refused unless still at `state_version`), the
    /// pending enrichment it creates, the one it `resolves` (refused unless
    /// still there), and every bucket update.
    pub async fn apply(
        &self,
        plan: &Plan,
        now_ms: i64,
        state_version: u64,
        resolves: Option<&PendingEnrichment>,
    ) -> Result<Applied, AnalyticsError> {
        const OP: &str = "TransactWriteItems";
        let err = |reason: String| self.dynamodb(OP, reason);
        let ttl = now_ms / 1000 + MARKER_TTL_S;
        let mut tx = Transaction::default();
        tx.put(
            Slot::Marker(0),
            self.marker_put(plan, now_ms, ttl).map_err(err)?,
        );
        if let (Some(state), Some(conversation_id)) =
            (&plan.state, plan_conversation(plan, resolves))
        {
            let json = serde_json::to_string(state).map_err(|e| err(e.to_string()))?;
            let put = self
                .state_put(&conversation_id, json, state_version, ttl)
                .map_err(err)?;
            tx.put(Slot::State, put);
        }
        if let Some(p) = &plan.pending {
            tx.put(Slot::Other, self.pending_put(p, ttl).map_err(err)?);
        }
        if let Some(p) = resolves {
            tx.delete(Slot::Resolved, self.resolved_delete(p).map_err(err)?);
        }
        self.add_cells(&mut tx, cells(plan), late_hours(plan, now_ms))
            .map_err(err)?;
        match tx.send(self, OP, &plan.event_id).await {
            Ok(()) => Ok(Applied::Processed),
            Err(Refused { failed, error }) => {
                if failed
                    .iter()
                    .any(|s| matches!(s, Slot::Marker(_) | Slot::Resolved))
                {
                    Ok(Applied::Duplicate)
                } else if failed.contains(&Slot::State) {
                    Err(AnalyticsError::Conflict {
                        reason: "the conversation's state changed since it was read".into(),
                    })
                } else {
                    Err(error)
                }
            }
        }
    }

    /// Stateless plans (no conversation state, nothing resolved) in one
    /// `TransactWriteItems`: each plan's marker and pending enrichment, and
    /// their bucket deltas merged into as few cells as possible. A marker
    /// that exists makes its plan a duplicate: it is left out and the rest
    /// is written again. Returns, per plan, whether it was counted now.
    /// The caller keeps the items within 100 ([`super::batch_items`]).
    pub async fn apply_batch(
        &self,
        plans: &[Plan],
        now_ms: i64,
    ) -> Result<Vec<Applied>, AnalyticsError> {
        let mut out = vec![Applied::Duplicate; plans.len()];
        // The same content twice in one batch is one event.
        let mut seen = BTreeSet::new();
        let mut live: Vec<usize> = (0..plans.len())
            .filter(|&i| seen.insert(plans[i].marker.clone()))
            .collect();
        while let Some(&first) = live.first() {
            let tx = self.batch_transaction(plans, &live, now_ms)?;
            match tx
                .send(self, "TransactWriteItems (batch)", &plans[first].event_id)
                .await
            {
                Ok(()) => {
                    for &i in &live {
                        out[i] = Applied::Processed;
                    }
                    return Ok(out);
                }
                Err(Refused { failed, error }) => {
                    let duplicates: Vec<usize> = failed
                        .iter()
                        .filter_map(|s| match s {
                            Slot::Marker(i) => Some(*i),
                            _ => None,
                        })
                        .collect();
                    if duplicates.is_empty() {
                        return Err(error);
                    }
                    live.retain(|i| !duplicates.contains(i));
                }
            }
        }
        Ok(out)
    }

    /// The transaction of the `live` plans of a batch: markers and pending
    /// enrichments, then the merged cells and the dirty marks.
    fn batch_transaction(
        &self,
        plans: &[Plan],
        live: &[usize],
        now_ms: i64,
    ) -> Result<Transaction, AnalyticsError> {
        let err = |reason: String| self.dynamodb("TransactWriteItems (batch)", reason);
        let ttl = now_ms / 1000 + MARKER_TTL_S;
        let mut tx = Transaction::default();
        let mut merged = CellDeltas::new();
        let mut late = BTreeSet::new();
        for &i in live {
            let plan = &plans[i];
            tx.put(
                Slot::Marker(i),
                self.marker_put(plan, now_ms, ttl).map_err(err)?,
            );
            if let Some(p) = &plan.pending {
                tx.put(Slot::Other, self.pending_put(p, ttl).map_err(err)?);
            }
            for (cell, counters) in cells(plan) {
                let into = merged.entry(cell).or_default();
                for (name, d) in counters {
                    let e: &mut i64 = into.entry(name).or_default();
                    *e = e.saturating_add(d);
                }
            }
            late.extend(late_hours(plan, now_ms));
        }
        for counters in merged.values_mut() {
            counters.retain(|_, d| *d != 0);
        }
        merged.retain(|_, counters| !counters.is_empty());
        self.add_cells(&mut tx, merged, late).map_err(err)?;
        Ok(tx)
    }

    /// Adds `cells` to one shard picked at random, and a dirty mark in the
    /// same shard for each of the `late` hours.
    fn add_cells(
        &self,
        tx: &mut Transaction,
        cells: CellDeltas,
        late: BTreeSet<i64>,
    ) -> Result<(), String> {
        let shard_index = rand::random_range(0..BUCKET_SHARDS);
        let shard = self.shard_pk(shard_index);
        for ((minute, flow), counters) in cells {
            let update = self.cell_update(&shard, minute, flow.as_deref(), &counters)?;
            tx.update(Slot::Other, update);
        }
        for hour in late {
            tx.update(Slot::Other, self.dirty_update(hour, shard_index)?);
        }
        Ok(())
    }

    /// The conversation's state at `state_version + 1`: refused unless the
    /// item is still at `state_version` (or, first writer, absent).
    fn state_put(
        &self,
        conversation_id: &str,
        json: String,
        state_version: u64,
        ttl: i64,
    ) -> Result<Put, String> {
        let n = |v: i64| AttributeValue::N(v.to_string());
        let version = i64::try_from(state_version).unwrap_or(i64::MAX);
        let pk = self.state_pk(conversation_id);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(self.tagged_item(&pk))
            .item(key::PK, AttributeValue::S(pk))
            .item(key::SK, AttributeValue::S(STATE_SK.into()))
            .item(key::STATE, AttributeValue::S(json))
            .item(key::VERSION, n(version.saturating_add(1)))
            .item(key::TTL, n(ttl));
        let put = if state_version == 0 {
            put.condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", key::PK)
        } else {
            put.condition_expression("#version = :version")
                .expression_attribute_names("#version", key::VERSION)
                .expression_attribute_values(":version", n(version))
        };
        put.build().map_err(|e| e.to_string())
    }

    /// The delete of the pending enrichment a plan resolves: refused
    /// unless it is still there.
    fn resolved_delete(&self, p: &PendingEnrichment) -> Result<Delete, String> {
        Delete::builder()
            .table_name(&self.table)
            .key(key::PK, AttributeValue::S(self.pending_pk()))
            .key(key::SK, AttributeValue::S(pending_sk(p)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", key::PK)
            .build()
            .map_err(|e| e.to_string())
    }

    /// The mark a late write leaves on `hour`, in the shard of its cells.
    pub(crate) fn dirty_update(&self, hour: i64, shard: u32) -> Result<Update, String> {
        let pk = self.dirty_pk(shard);
        let (expr, tag) = self.tagged(&pk, "ADD #n :one");
        let update = Update::builder()
            .table_name(&self.table)
            .key(key::PK, AttributeValue::S(pk))
            .key(key::SK, AttributeValue::S(format!("h#{hour:013}")))
            .update_expression(expr)
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        match tag {
            Some(t) => update
                .expression_attribute_names("#org_shard", ORG_SHARD)
                .expression_attribute_values(":org_shard", t),
            None => update,
        }
        .build()
        .map_err(|e| e.to_string())
    }

    /// The event's marker: refused if it exists (counted before).
    fn marker_put(&self, plan: &Plan, now_ms: i64, ttl: i64) -> Result<Put, String> {
        let pk = self.marker_pk(&plan.marker);
        Put::builder()
            .table_name(&self.table)
            .set_item(self.tagged_item(&pk))
            .item(key::PK, AttributeValue::S(pk))
            .item(key::SK, AttributeValue::S("event".into()))
            .item(
                key::EVENTBRIDGE_ID,
                AttributeValue::S(plan.event_id.clone()),
            )
            .item(key::AT, AttributeValue::N(now_ms.to_string()))
            .item(key::TTL, AttributeValue::N(ttl.to_string()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", key::PK)
            .build()
            .map_err(|e| e.to_string())
    }

    fn pending_put(&self, p: &PendingEnrichment, ttl: i64) -> Result<Put, String> {
        let json = serde_json::to_string(p).map_err(|e| e.to_string())?;
        let pk = self.pending_pk();
        Put::builder()
            .table_name(&self.table)
            .set_item(self.tagged_item(&pk))
            .item(key::PK, AttributeValue::S(pk))
            .item(key::SK, AttributeValue::S(pending_sk(p)))
            .item(key::PENDING, AttributeValue::S(json))
            .item(key::TTL, AttributeValue::N(ttl.to_string()))
            .build()
            .map_err(|e| e.to_string())
    }

    pub(crate) fn cell_update(
        &self,
        shard: &str,
        minute: i64,
        flow: Option<&str>,
        counters: &BTreeMap<String, i64>,
    ) -> Result<Update, String> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut adds = Vec::new();
        for (i, (name, delta)) in counters.iter().enumerate() {
            names.insert(format!("#a{i}"), name.clone());
            values.insert(format!(":v{i}"), AttributeValue::N(delta.to_string()));
            adds.push(format!("#a{i} :v{i}"));
        }
        // The same `ttl` on every update of the cell (crate::retention).
        names.insert("#ttl".into(), key::TTL.into());
        values.insert(
            ":ttl".into(),
            AttributeValue::N(self.retention.minute_cell_ttl(minute).to_string()),
        );
        let (expr, tag) = self.tagged(shard, &format!("ADD {} SET #ttl = :ttl", adds.join(", ")));
        if let Some(t) = tag {
            names.insert("#org_shard".into(), ORG_SHARD.into());
            values.insert(":org_shard".into(), t);
        }
        Update::builder()
            .table_name(&self.table)
            .key(key::PK, AttributeValue::S(shard.to_string()))
            .key(key::SK, AttributeValue::S(cell_sk(minute, flow)))
            .update_expression(expr)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| e.to_string())
    }
}
