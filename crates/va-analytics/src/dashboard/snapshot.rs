//! A snapshot: a range's buckets, its flows, its rates and percentiles,
//! and the token health, as the page shows them.

use std::collections::BTreeMap;

use token_store::TokenStore;

use super::{DashboardError, FlowRow, Snapshot, TokenHealth, bucket_for, rebucket};
use crate::kpi::{Scope, attr, duration_percentile};
use crate::store::{AnalyticsStore, Bucket};

/// One flow's row of the table.
fn flow_row(flow_id: &str, name: Option<&String>, t: &BTreeMap<String, i64>) -> FlowRow {
    let get = |k: &str| t.get(k).copied().unwrap_or(0);
    let ended = get(attr::ENDED);
    let rate = |k: &str| (ended > 0).then(|| get(k) as f64 / ended as f64);
    FlowRow {
        flow_id: flow_id.to_string(),
        name: name.cloned().unwrap_or_else(|| flow_id.to_string()),
        sessions: get(attr::STARTED),
        ended,
        contained: get(attr::CONTAINED),
        escalated: get(attr::ESCALATED),
        abandoned: get(attr::ABANDONED),
        recognition_failures: get(attr::RECOGNITION_FAILURES),
        containment_rate: rate(attr::CONTAINED),
        escalation_rate: rate(attr::ESCALATED),
        abandonment_rate: rate(attr::ABANDONED),
        median_duration_s: duration_percentile(t, 50.0),
    }
}

fn totals(buckets: &[Bucket]) -> BTreeMap<String, i64> {
    let mut t = BTreeMap::new();
    for b in buckets {
        for (k, v) in &b.counters {
            let e: &mut i64 = t.entry(k.clone()).or_default();
            *e = e.saturating_add(*v);
        }
    }
    t
}

/// Reads one scope's buckets (one Query) and every token slot (one read each).
pub async fn snapshot(
    store: &AnalyticsStore,
    tokens: &TokenStore,
    pool_size: usize,
    scope: &Scope,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Result<Snapshot, DashboardError> {
    let (bucket, _) = bucket_for(to_ms.saturating_sub(from_ms));
    // Hours and days: whole hours from their roll-up cells.
    let breakdown = if bucket == "minute" {
        store.query_breakdown(scope, from_ms, to_ms).await?
    } else {
        store.query_rolled(scope, from_ms, to_ms).await?
    };
    let view = View {
        store,
        tokens,
        pool_size,
        scope,
    };
    view.assemble(breakdown, from_ms, to_ms, now_ms).await
}

/// What one answer is about: an org's store and token items, a scope.
pub(crate) struct View<'a> {
    pub(crate) store: &'a AnalyticsStore,
    pub(crate) tokens: &'a TokenStore,
    pub(crate) pool_size: usize,
    pub(crate) scope: &'a Scope,
}

impl View<'_> {
    /// The snapshot of `breakdown` (the range's buckets, already read), with
    /// the flows' names and the token health read now.
    pub(crate) async fn assemble(
        &self,
        breakdown: crate::store::Breakdown,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
    ) -> Result<Snapshot, DashboardError> {
        let scope = self.scope;
        let (bucket, bucket_ms) = bucket_for(to_ms.saturating_sub(from_ms));
        // Without names the table still has ids: a failed read is not an outage.
        let (names, name_reads) = match self.store.flow_names().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "flow names not read; showing ids");
                Default::default()
            }
        };
        let mut reads = breakdown.reads;
        reads.merge(&name_reads);
        let buckets = breakdown.buckets;
        let flows = flow_rows(&breakdown.flows, &names);
        let totals = totals(&buckets);
        let get = |k: &str| totals.get(k).copied().unwrap_or(0);
        let ended = get(attr::ENDED);
        let rate = |k: &str| (ended > 0).then(|| get(k) as f64 / ended as f64);
        let health = token_health(self.tokens, self.pool_size, now_ms).await?;
        let count = get(attr::DURATION_COUNT);
        Ok(Snapshot {
            from_ms,
            to_ms,
            org: String::new(),
            scope: match scope {
                Scope::Org => "all flows".to_string(),
                Scope::Flow(id) => names.get(id).cloned().unwrap_or_else(|| id.clone()),
            },
            flow_id: match scope {
                Scope::Org => None,
                Scope::Flow(id) => Some(id.clone()),
            },
            bucket,
            bucket_ms,
            series: rebucket(&buckets, bucket_ms, from_ms, to_ms),
            flows,
            reads,
            containment_rate: rate(attr::CONTAINED),
            escalation_rate: rate(attr::ESCALATED),
            abandonment_rate: rate(attr::ABANDONED),
            duration_p50_s: duration_percentile(&totals, 50.0),
            duration_p90_s: duration_percentile(&totals, 90.0),
            duration_p99_s: duration_percentile(&totals, 99.0),
            average_duration_s: (count > 0)
                .then(|| get(attr::DURATION_MS_SUM) as f64 / count as f64 / 1000.0),
            top_intents: top_intents(&totals),
            outcomes: outcomes(&totals),
            totals,
            tokens: health,
            generated_at_ms: now_ms,
            settled: None,
        })
    }
}

/// The flows with sessions, most sessions first.
fn flow_rows(
    flows: &BTreeMap<String, BTreeMap<String, i64>>,
    names: &BTreeMap<String, String>,
) -> Vec<FlowRow> {
    let mut rows: Vec<FlowRow> = flows
        .iter()
        .map(|(id, t)| flow_row(id, names.get(id), t))
        .filter(|r| r.sessions > 0 || r.ended > 0)
        .collect();
    rows.sort_by(|a, b| b.sessions.cmp(&a.sessions).then(a.name.cmp(&b.name)));
    rows
}

/// Final intents by count, most first.
fn top_intents(totals: &BTreeMap<String, i64>) -> Vec<(String, i64)> {
    let mut top: Vec<(String, i64)> = totals
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(attr::INTENT_PREFIX)?.to_string(), *v)))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top
}

/// Per outcome id: (successes, failures).
fn outcomes(totals: &BTreeMap<String, i64>) -> BTreeMap<String, (i64, i64)> {
    let mut outcomes: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (k, v) in totals {
        if let Some(rest) = k.strip_prefix(attr::OUTCOME_PREFIX)
            && let Some((id, kind)) = rest.rsplit_once('#')
        {
            let e = outcomes.entry(id.to_string()).or_default();
            if kind == "success" {
                e.0 = e.0.saturating_add(*v);
            } else {
                e.1 = e.1.saturating_add(*v);
            }
        }
    }
    outcomes
}

/// Every token slot's health, read now (one read a slot).
async fn token_health(
    tokens: &TokenStore,
    pool_size: usize,
    now_ms: i64,
) -> Result<Vec<TokenHealth>, DashboardError> {
    let mut health = Vec::new();
    for slot in 0..pool_size.max(1) {
        let item = tokens.read_health(slot).await?.unwrap_or_default();
        health.push(TokenHealth {
            slot,
            version: item.version,
            has_token: item.version > 0,
            expires_in_s: (item.version > 0).then(|| item.expires_at.saturating_sub(now_ms) / 1000),
            last_refresh_ms: item.refreshed_at,
            lease_held: item.lease_live(now_ms),
            failures: item.failures,
            last_error_code: item.last_error_code,
        });
    }
    Ok(health)
}
