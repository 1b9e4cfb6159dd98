//! Roll-ups: once an hour is sealed its minute cells are summed into hour
//! cells, and rolled again when a late write marks it dirty.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use tokio::time::Instant;

use super::keys::parse_cell_sk;
use super::pages::Read;
use super::read::MinuteCells;
use super::{AnalyticsError, AnalyticsStore, BUCKET_SHARDS, ReadStats, key};
use crate::kpi::{MAX_ACTIVE_MINUTES, Plan, active_from_spans, attr};

/// An hour is rolled up (its minute cells summed into hour cells) this long
/// after it starts: its last minute is then an hour old, and every session
/// that could still add to its `active` (at most 45 minutes long) has ended.
pub const SEAL_AFTER_MS: i64 = 2 * 3_600_000;
/// A write to a minute older than this (including the minutes a session's
/// span reaches back to) may land in a rolled hour: it marks the hour dirty,
/// in the same transaction, and the sweeper rolls it again. An hour's last
/// minute is 61 minutes old when it is sealed, so a write left unmarked
/// committed at least 11 minutes before the roll-up read (an invocation in
/// flight, clock skew).
pub const LATE_AFTER_MS: i64 = 50 * 60_000;
pub(super) const HOUR_MS: i64 = 3_600_000;
// Sealing reads an hour only once every minute of it is older than the
// margin: no write lands in a sealed hour without marking it.
const _: () = assert!(SEAL_AFTER_MS - (HOUR_MS - 60_000) > LATE_AFTER_MS);
/// How far back a first roll-up goes: the longest range a dashboard reads
/// (31 whole days), plus the day it starts in.
const BACKFILL_MS: i64 = 32 * 24 * HOUR_MS;

/// The org's peak `active` in an hour cell (flows' `active` are their own).
pub(super) const ORG_ACTIVE: &str = "active_org";

/// The start of the hour `minute_ms` is in.
pub(super) fn hour_of(minute_ms: i64) -> i64 {
    minute_ms - minute_ms.rem_euclid(HOUR_MS)
}

/// The hours a plan writes to that may already be rolled up.
pub fn late_hours(plan: &Plan, now_ms: i64) -> BTreeSet<i64> {
    let mut hours = BTreeSet::new();
    for ((_, minute), counters) in &plan.buckets {
        let reach = counters
            .keys()
            .filter_map(|k| k.strip_prefix(attr::SPAN_PREFIX)?.parse::<i64>().ok())
            .max()
            .unwrap_or(1)
            .clamp(1, MAX_ACTIVE_MINUTES);
        let first = minute.saturating_sub((reach - 1) * 60_000);
        let mut h = hour_of(first);
        while h <= *minute {
            // The youngest minute of this hour the write touches.
            let touched = (*minute).min(h + HOUR_MS - 60_000);
            if now_ms.saturating_sub(touched) > LATE_AFTER_MS {
                hours.insert(h);
            }
            h += HOUR_MS;
        }
    }
    hours
}

/// What a roll-up did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RollReport {
    /// Hours rolled up for the first time (sealed, or backfilled).
    pub sealed: usize,
    /// Dirty hours rolled again.
    pub rerolled: usize,
    /// The last hour rolled up, epoch ms.
    pub rolled_to: Option<i64>,
}

/// Where the roll-up stands: hours `from..=to` are rolled, and whether it
/// has worked back as far as it goes.
#[derive(Debug, Clone, Copy)]
struct RollState {
    from: i64,
    to: i64,
    backfilled: bool,
}

impl AnalyticsStore {
    /// Rolls up every sealed hour not rolled yet, then works back to the
    /// oldest cell (at most 32 days) until that is done (at most `max_hours`
    /// hours, each saved as it is done, none begun after `deadline`), and
    /// rolls again up to `max_hours` dirty ones: each hour's minute cells,
    /// read strongly consistent, summed over shards into one cell per flow
    /// and one for the rest, `active` as the peak minute. Idempotent: a
    /// roll-up overwrites the hour's cells. One writer at a time (the
    /// sweeper runs under [`crate::SweepLease`]).
    pub async fn roll_up(
        &self,
        now_ms: i64,
        max_hours: usize,
        deadline: Instant,
    ) -> Result<RollReport, AnalyticsError> {
        let mut report = RollReport::default();
        let last_sealed = hour_of(now_ms.saturating_sub(SEAL_AFTER_MS));
        let mut state = self.roll_state(last_sealed).await?;
        // Each hour's progress is saved at once: a sweep cut short keeps it.
        let budget = |report: &RollReport| report.sealed < max_hours && Instant::now() < deadline;
        // Forward: every hour sealed since the last run.
        while state.to < last_sealed && budget(&report) {
            self.roll_hour(state.to + HOUR_MS).await?;
            state.to += HOUR_MS;
            report.sealed += 1;
            self.save_roll_state(state).await?;
        }
        if !state.backfilled && budget(&report) {
            self.backfill(&mut state, now_ms, &mut report, budget)
                .await?;
        }
        report.rolled_to = (state.from <= state.to).then_some(state.to);
        // Marks read after sealing: an hour sealed above and written late
        // since is rolled again here.
        for (dirty, marks) in self.dirty_hours(true).await?.0 {
            // Outside the rolled hours a mark means nothing: those hours are
            // read from minute cells, and sealing reads them consistently.
            if (state.from..=state.to).contains(&dirty) {
                if report.rerolled >= max_hours || Instant::now() >= deadline {
                    break;
                }
                self.roll_hour(dirty).await?;
                report.rerolled += 1;
            }
            for (shard, n) in marks {
                self.clear_mark(dirty, shard, n).await?;
            }
        }
        Ok(report)
    }

    /// The saved state; a first run starts at the last sealed hour and
    /// works back, and saves that start before anything else.
    async fn roll_state(&self, last_sealed: i64) -> Result<RollState, AnalyticsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(key::PK, AttributeValue::S(self.hours_pk()))
            .key(key::SK, AttributeValue::S("state".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.dynamodb("GetItem (roll-up state)", DisplayErrorContext(e)))?;
        let number = |k: &str| {
            out.item()
                .and_then(|i| i.get(k))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
        };
        let backfilled = out
            .item()
            .and_then(|i| i.get("backfilled"))
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false);
        let (from, to) = match (number("rolled_from"), number("rolled_to")) {
            (Some(f), Some(t)) => (f, t),
            _ => (last_sealed + HOUR_MS, last_sealed),
        };
        let state = RollState {
            from,
            to,
            backfilled,
        };
        if number("rolled_to").is_none() {
            self.save_roll_state(state).await?;
        }
        Ok(state)
    }

    /// Backward, with what is left of the budget: down to the oldest minute
    /// cell, at most as far as the longest range a dashboard reads. Until
    /// then the older hours are read from minute cells.
    async fn backfill(
        &self,
        state: &mut RollState,
        now_ms: i64,
        report: &mut RollReport,
        budget: impl Fn(&RollReport) -> bool,
    ) -> Result<(), AnalyticsError> {
        let floor = match self.first_minute().await? {
            Some(m) => hour_of(m).max(hour_of(now_ms - BACKFILL_MS)),
            None => state.from,
        };
        while state.from > floor && budget(report) {
            self.roll_hour(state.from - HOUR_MS).await?;
            state.from -= HOUR_MS;
            report.sealed += 1;
            self.save_roll_state(*state).await?;
        }
        if state.from <= floor {
            state.backfilled = true;
            self.save_roll_state(*state).await?;
        }
        Ok(())
    }

    /// Deletes a dirty mark, only if no write marked it again meanwhile.
    async fn clear_mark(&self, hour: i64, shard: u32, n: i64) -> Result<(), AnalyticsError> {
        use aws_sdk_dynamodb::operation::delete_item::DeleteItemError as E;
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(key::PK, AttributeValue::S(self.dirty_pk(shard)))
            .key(key::SK, AttributeValue::S(format!("h#{hour:013}")))
            .condition_expression("#n = :n")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
            .send()
            .await;
        // Marked again, or a late write holds it right now: it stays for
        // the next sweep.
        match r {
            Err(e)
                if !matches!(
                    e.as_service_error(),
                    Some(
                        E::ConditionalCheckFailedException(_) | E::TransactionConflictException(_)
                    )
                ) =>
            {
                Err(self.dynamodb("DeleteItem (dirty hour)", DisplayErrorContext(e)))
            }
            _ => Ok(()),
        }
    }

    async fn save_roll_state(&self, state: RollState) -> Result<(), AnalyticsError> {
        let pk = self.hours_pk();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(self.tagged_item(&pk))
            .item(key::PK, AttributeValue::S(pk))
            .item(key::SK, AttributeValue::S("state".into()))
            .item("rolled_to", AttributeValue::N(state.to.to_string()))
            .item("rolled_from", AttributeValue::N(state.from.to_string()))
            .item("backfilled", AttributeValue::Bool(state.backfilled))
            .send()
            .await
            .map_err(|e| self.dynamodb("PutItem (roll-up state)", DisplayErrorContext(e)))?;
        Ok(())
    }

    /// The oldest minute any cell holds (one single-item `Query` a shard).
    async fn first_minute(&self) -> Result<Option<i64>, AnalyticsError> {
        let mut first: Option<i64> = None;
        for shard in 0..BUCKET_SHARDS {
            self.each_item(
                "Query (oldest cell)",
                &self.shard_pk(shard),
                "begins_with(#sk, :m)",
                &[(":m", "m#".to_string())],
                Read {
                    page: Some(1),
                    consistent: true,
                },
                |item| {
                    if let Some((m, _)) = item
                        .get(key::SK)
                        .and_then(|v| v.as_s().ok())
                        .and_then(|sk| parse_cell_sk(sk))
                    {
                        first = Some(first.map_or(m, |f| f.min(m)));
                    }
                    false
                },
            )
            .await?;
        }
        Ok(first)
    }

    /// Dirty hours and their marks (shard, count), and what reading them
    /// cost: one `Query` per mark partition, in parallel.
    pub(super) async fn dirty_hours(
        &self,
        consistent: bool,
    ) -> Result<(BTreeMap<i64, Vec<(u32, i64)>>, ReadStats), AnalyticsError> {
        let reads = (0..BUCKET_SHARDS).map(|shard| async move {
            let mut marks = Vec::new();
            self.each_item(
                "Query (dirty marks)",
                &self.dirty_pk(shard),
                "begins_with(#sk, :h)",
                &[(":h", "h#".to_string())],
                Read {
                    consistent,
                    ..Read::default()
                },
                |item| {
                    let hour = item
                        .get(key::SK)
                        .and_then(|v| v.as_s().ok())
                        .and_then(|sk| sk.strip_prefix("h#")?.parse::<i64>().ok());
                    let n = item
                        .get("n")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|n| n.parse::<i64>().ok());
                    if let (Some(hour), Some(n)) = (hour, n) {
                        marks.push((hour, shard, n));
                    }
                    true
                },
            )
            .await
            .map(|stats| (marks, stats))
        });
        let mut out: BTreeMap<i64, Vec<(u32, i64)>> = BTreeMap::new();
        let mut stats = ReadStats::default();
        for shard in futures::future::join_all(reads).await {
            let (marks, s) = shard?;
            stats.merge(&s);
            for (hour, shard, n) in marks {
                out.entry(hour).or_default().push((shard, n));
            }
        }
        Ok((out, stats))
    }

    /// One hour's roll-up cells, from its minute cells (and the 44 minutes
    /// after it, for `active`).
    async fn roll_hour(&self, hour: i64) -> Result<(), AnalyticsError> {
        let read_to = hour + HOUR_MS - 60_000 + (MAX_ACTIVE_MINUTES - 1) * 60_000;
        let (cells, _) = self.minute_cells(hour, read_to, true).await?;
        for (flow, counters) in hour_cells(hour, cells) {
            // A flow seen only after the hour (its `active` reach) has no cell.
            if counters.is_empty() {
                continue;
            }
            let sk = match &flow {
                Some(f) => format!("h#{hour:013}#f#{f}"),
                None => format!("h#{hour:013}#-"),
            };
            let mut item: HashMap<String, AttributeValue> = counters
                .into_iter()
                .map(|(k, n)| (k, AttributeValue::N(n.to_string())))
                .collect();
            item.extend(self.tagged_item(&self.hours_pk()).unwrap_or_default());
            item.insert(
                key::TTL.into(),
                AttributeValue::N(self.retention.hour_cell_ttl(hour).to_string()),
            );
            item.insert(key::PK.into(), AttributeValue::S(self.hours_pk()));
            item.insert(key::SK.into(), AttributeValue::S(sk));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|e| self.dynamodb("PutItem (hour cell)", DisplayErrorContext(e)))?;
        }
        Ok(())
    }
}

/// Counters per minute.
type Minutes = BTreeMap<i64, BTreeMap<String, i64>>;

/// An hour's cells from its minute cells: per flow (and the flowless cell)
/// the hour's sums, `active` as the flow's peak minute, and the org's peak
/// in the flowless cell as [`ORG_ACTIVE`].
fn hour_cells(hour: i64, cells: MinuteCells) -> Vec<(Option<String>, BTreeMap<String, i64>)> {
    let last_minute = hour + HOUR_MS - 60_000;
    let peak = |minutes: &Minutes| {
        active_from_spans(minutes)
            .range(hour..=last_minute)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0)
    };
    let mut per_flow: BTreeMap<Option<String>, Minutes> = BTreeMap::new();
    for ((minute, flow), counters) in cells {
        let into = per_flow.entry(flow).or_default().entry(minute).or_default();
        add_all(into, counters);
    }
    let mut org = Minutes::new();
    let mut out = Vec::new();
    for (flow, minutes) in &per_flow {
        for (m, c) in minutes {
            add_all(org.entry(*m).or_default(), c.clone());
        }
        let mut sums = BTreeMap::new();
        for (_, c) in minutes.range(hour..=last_minute) {
            let counts = c.iter().filter(|(k, _)| !k.starts_with(attr::SPAN_PREFIX));
            add_all(&mut sums, counts.map(|(k, n)| (k.clone(), *n)));
        }
        if flow.is_some() {
            let flow_peak = peak(minutes);
            if flow_peak > 0 {
                sums.insert(attr::ACTIVE.into(), flow_peak);
            }
        }
        out.push((flow.clone(), sums));
    }
    // As minute reads do: no `active` in an hour nobody was in.
    let org_peak = peak(&org);
    if org_peak > 0 {
        match out.iter_mut().find(|(f, _)| f.is_none()) {
            Some((_, c)) => {
                c.insert(ORG_ACTIVE.into(), org_peak);
            }
            None => out.push((None, BTreeMap::from([(ORG_ACTIVE.to_string(), org_peak)]))),
        }
    }
    out
}

/// Adds each counter into `into`, saturating.
fn add_all(into: &mut BTreeMap<String, i64>, counters: impl IntoIterator<Item = (String, i64)>) {
    for (k, n) in counters {
        let e: &mut i64 = into.entry(k).or_default();
        *e = e.saturating_add(n);
    }
}

#[cfg(test)]
mod tests {
    use super::super::cells::plan_with;
    use super::*;
    use crate::kpi::Scope;

    #[test]
    fn a_write_is_late_once_its_minute_is_older_than_the_margin() {
        let h = 10 * HOUR_MS;
        let minute = h + 30 * 60_000;
        let p = plan_with(&[(Scope::Org, minute, attr::STARTED, 1)]);
        assert!(late_hours(&p, minute + LATE_AFTER_MS).is_empty());
        assert_eq!(
            late_hours(&p, minute + LATE_AFTER_MS + 1),
            [h].into_iter().collect()
        );
    }

    #[test]
    fn a_span_marks_every_hour_it_reaches_back_into() {
        let h = 10 * HOUR_MS;
        // Ends 5 minutes into hour h + 1 after 20 minutes: reaches into h.
        let end = h + HOUR_MS + 5 * 60_000;
        let p = plan_with(&[(Scope::Org, end, "span_20", 1)]);
        // An hour later h's last minute is late, h + 1's end minute is not.
        let now = h + HOUR_MS + 54 * 60_000;
        assert_eq!(late_hours(&p, now), [h].into_iter().collect());
        assert_eq!(
            late_hours(&p, end + LATE_AFTER_MS + 1),
            [h, h + HOUR_MS].into_iter().collect()
        );
        // A span never reaches back more than the longest session counted.
        let long = plan_with(&[(Scope::Org, end, "span_9999", 1)]);
        let first = end - (MAX_ACTIVE_MINUTES - 1) * 60_000;
        assert_eq!(
            late_hours(&long, i64::MAX).first().copied(),
            Some(hour_of(first))
        );
    }
}
