//! The enrichment sweeper: on a schedule, it adds the final intent and bot
//! result of ended bot sessions, exactly once each, in batches.
//!
//! Every bot `flow.end` leaves a pending item in the same transaction that
//! counts it. A sweep lists the pending sessions that ended at least `delay`
//! ago, and for each bot flow asks the analytics API twice: one sessions query
//! (paged, 250 a page) whose `interval` covers their completion times, and one
//! reporting-turns query over the same sessions' lifetimes. A session's final
//! intent is its last turn's `intent.name`. Each found session is applied with
//! its own marker and the conditional delete of its pending item; one not
//! found stays pending for the next sweep, until `give_up_after`, when it
//! counts as "intent unknown"; one found with no turns counts with the
//! intent `none` at once. Analytics lag and outages of any length up to
//! that limit cost nothing but time.
//!
//! No session holds the others back: a write that still fails after its
//! retries is recorded (`SweepReport::item_failures`) and the session goes
//! after the others from then on. A quarter of every sweep's time is the
//! roll-up's, whatever the backlog.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use genesys::{encode_component, interval};
use lambda_support::Clock;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use va_analytics::{
    AnalyticsError, AnalyticsStore, Enrichment, PendingEnrichment, StateRead, plan_enrichment,
};

use crate::lookup::{ApiAccess, EnrichStats, GetError, get_retrying};
use crate::matching::{enrichments, last_turns, match_sessions, sessions_by_conversation};

/// The sweeper's tuning.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// First look this long after a session ends (the analytics API's
    /// ingestion lag; later sweeps look again).
    pub delay: Duration,
    /// After this, a session not found counts as "intent unknown".
    pub give_up_after: Duration,
    /// Completion times may differ from `flow.end` times by this much.
    pub skew: Duration,
    /// Pending sessions handled per sweep at most.
    pub batch: usize,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            delay: Duration::from_secs(120),
            give_up_after: Duration::from_secs(24 * 3_600),
            skew: Duration::from_secs(60),
            batch: 5_000,
        }
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Pending sessions looked at.
    pub pending: usize,
    /// Enriched with what the API reported.
    pub enriched: usize,
    /// Given up on: counted as intent unknown.
    pub gave_up: usize,
    /// Still pending (not in the API yet, or the API failed).
    pub left: usize,
    /// Platform API requests made.
    pub api_calls: u64,
    /// Flows whose queries failed this time: `flow id: error`.
    pub failures: Vec<String>,
    /// Flow names resolved and stored this time.
    pub names_resolved: usize,
    /// Hours rolled up (sealed or dirty) this time.
    pub hours_rolled: usize,
    /// The last hour rolled up so far, epoch ms (the roll-up's progress).
    pub rolled_to: Option<i64>,
    /// The roll-up failed this time (the dashboard reads minute cells
    /// meanwhile; the next sweep tries again).
    pub roll_up_failed: bool,
    /// Sessions whose write still failed after its retries,
    /// `conversation#session: error`. They stay pending and go after the
    /// others in the next sweep (metric `EnrichmentItemFailures`).
    pub item_failures: Vec<String>,
    /// Session writes tried again after a conflict, a throttle or a
    /// DynamoDB server error (metric `EnrichmentWriteRetries`).
    pub write_retries: u64,
    /// How long the oldest listed session has waited since it ended,
    /// seconds (0 with none; metric `OldestPendingSeconds`).
    pub oldest_pending_s: u64,
}

/// Counters across sweeps, for metrics and reports.
#[derive(Debug, Default)]
pub struct SweepStats {
    /// Platform API requests, 429s waited out, retries after a 401.
    pub api: EnrichStats,
    /// Sessions enriched.
    pub enriched: AtomicU64,
    /// Session writes tried again.
    pub write_retries: AtomicU64,
}

/// The sweeper. Build once per container; one runs at a time (the function
/// takes the sweep lease, `va_analytics::SweepLease`), and a second one
/// racing would only lose its conditional deletes.
pub struct Sweeper<A> {
    access: A,
    store: AnalyticsStore,
    clock: Arc<dyn Clock>,
    cfg: SweepConfig,
    /// What it did.
    pub stats: SweepStats,
    /// Flows whose name is stored, or the time to ask again (after a 403 or
    /// 404: an hour later), per flow id.
    names: std::sync::Mutex<HashMap<String, Option<i64>>>,
    /// Sessions whose write failed in an earlier sweep of this container:
    /// they go after the others, so none of them holds the rest back.
    failing: std::sync::Mutex<HashSet<String>>,
}

/// How long a flow whose name is forbidden or unknown waits before another try.
const NAME_RETRY_MS: i64 = 3_600_000;
/// Name lookups per sweep at most: a deployment with many new flows spreads
/// them over sweeps instead of spending one sweep's time on them.
const NAMES_PER_SWEEP: usize = 10;

/// The widest span of end times one sessions query covers.
const MAX_WINDOW: Duration = Duration::from_secs(30 * 60);

/// Why a lookup stopped.
#[derive(Debug)]
enum Stop {
    /// The enrichment's time is up; nothing failed.
    Deadline,
    /// A request failed (after its retries): the flow's failure this sweep.
    Failed(String),
}

/// A pending session's identity within a sweep.
pub(crate) fn pending_key(p: &PendingEnrichment) -> String {
    format!("{}#{}", p.conversation_id, p.session_key)
}

/// Tries of one request (5xx, transport, 429) before the sweep leaves its
/// sessions for the next one: an outage costs a few calls a sweep, not a
/// sweep's whole time.
const MAX_TRIES: u32 = 4;

/// Analytics pages hold at most this many items (the API's maximum).
const PAGE_SIZE: u32 = 250;

/// Tries of one session's write (throttles, conflicts, DynamoDB 5xx) before
/// it counts as an item failure and waits for the next sweep.
const MAX_WRITE_TRIES: usize = 8;

/// The share of every sweep's time kept for the roll-up (divisor): a backlog
/// of enrichment never starves the hours the dashboard's long ranges read.
const ROLL_UP_SHARE: u32 = 4;

/// Backoff of a store request that may succeed later: jittered, doubling
/// from `first` up to `max` (callers bound it by tries and their deadline).
fn store_backoff(first: Duration, max: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(max)
        .with_jitter()
}

/// When enrichment stops so the roll-up keeps its share of the time left.
fn enrichment_deadline(start: Instant, deadline: Instant) -> Instant {
    let budget = deadline.saturating_duration_since(start);
    deadline - budget / ROLL_UP_SHARE
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn date_ms(v: &Value) -> Option<i64> {
    Some(crate::lookup::date_ms(v)).filter(|t| *t != i64::MIN)
}

impl<A: ApiAccess> Sweeper<A> {
    /// A sweeper calling the Platform API through `access`.
    pub fn new(access: A, store: AnalyticsStore, clock: Arc<dyn Clock>, cfg: SweepConfig) -> Self {
        Self {
            access,
            store,
            clock,
            cfg,
            stats: SweepStats::default(),
            names: std::sync::Mutex::default(),
            failing: std::sync::Mutex::default(),
        }
    }

    /// Whether any session still waits for enrichment, ready or not.
    pub async fn has_pending(&self) -> Result<bool, AnalyticsError> {
        Ok(!self.store.pending(i64::MAX, 1).await?.is_empty())
    }

    /// One sweep, stopping new work at `deadline`. Enrichment stops early
    /// enough to leave the roll-up its share; a session whose write fails is
    /// recorded and left pending, never stopping the others. Only listing
    /// the pending sessions can fail the sweep (after the roll-up).
    pub async fn sweep(&self, deadline: Instant) -> Result<SweepReport, AnalyticsError> {
        self.store.check_layout().await?;
        let started = Instant::now();
        let enrich_by = enrichment_deadline(started, deadline);
        let calls_before = self.stats.api.api_calls.load(Ordering::Relaxed);
        let retries_before = self.stats.write_retries.load(Ordering::Relaxed);
        let now = self.clock.now_ms();
        let pending = match self.list_pending(now, enrich_by).await {
            Ok(pending) => pending,
            Err(e) => {
                // The roll-up still gets its turn; the sweep reports the error.
                self.roll_up(now, deadline, &mut SweepReport::default())
                    .await;
                return Err(e);
            }
        };
        let mut report = SweepReport {
            pending: pending.len(),
            oldest_pending_s: pending
                .iter()
                .map(|p| now.saturating_sub(p.end_ms))
                .max()
                .map_or(0, |age| u64::try_from(age / 1_000).unwrap_or(0)),
            ..SweepReport::default()
        };
        let flow_ids: Vec<String> = pending
            .iter()
            .map(|p| p.flow_id.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        report.names_resolved = self.resolve_names(&flow_ids, now, enrich_by).await;
        let groups = groups(
            pending,
            ms(self.cfg.skew),
            &self.failing.lock().unwrap_or_else(|e| e.into_inner()),
        );
        for items in groups {
            self.sweep_group(&items, now, enrich_by, &mut report).await;
        }
        self.roll_up(now, deadline, &mut report).await;
        report.write_retries = self
            .stats
            .write_retries
            .load(Ordering::Relaxed)
            .saturating_sub(retries_before);
        report.api_calls = self
            .stats
            .api
            .api_calls
            .load(Ordering::Relaxed)
            .saturating_sub(calls_before);
        Ok(report)
    }

    /// The sessions ready for a look, oldest first; a throttle or a
    /// DynamoDB server error is retried while there is time.
    async fn list_pending(
        &self,
        now: i64,
        deadline: Instant,
    ) -> Result<Vec<PendingEnrichment>, AnalyticsError> {
        let ended_by = now.saturating_sub(ms(self.cfg.delay));
        (|| self.store.pending(ended_by, self.cfg.batch))
            .retry(
                store_backoff(Duration::from_millis(50), Duration::from_secs(2))
                    .without_max_times(),
            )
            .sleep(tokio::time::sleep)
            .when(AnalyticsError::is_transient)
            .adjust(|_, wait| wait.filter(|w| Instant::now() + *w < deadline))
            .notify(|e, _| tracing::warn!(error = %e, "listing pending sessions failed; retrying"))
            .await
    }

    /// Rolls up sealed and dirty hours (the dashboard's long ranges read
    /// them) in the share kept for it; a failure waits for the next sweep.
    async fn roll_up(&self, now: i64, deadline: Instant, report: &mut SweepReport) {
        if Instant::now() >= deadline {
            return;
        }
        match self.store.roll_up(now, 24, deadline).await {
            Ok(r) => {
                report.hours_rolled = r.sealed + r.rerolled;
                report.rolled_to = r.rolled_to;
            }
            Err(e) => {
                report.roll_up_failed = true;
                tracing::warn!(error = %e, "roll-up failed; next sweep");
            }
        }
    }

    /// Looks one group up and resolves each of its sessions: found ones
    /// with what the API reports, overdue ones as given up.
    async fn sweep_group(
        &self,
        items: &[PendingEnrichment],
        now: i64,
        deadline: Instant,
        report: &mut SweepReport,
    ) {
        let give_up =
            |p: &PendingEnrichment| now.saturating_sub(p.end_ms) >= ms(self.cfg.give_up_after);
        let flow_id = items.first().map(|p| p.flow_id.clone()).unwrap_or_default();
        let found = match self.lookup(&flow_id, items, deadline).await {
            Ok(found) => found,
            // Out of time: not a failure; the sessions wait.
            Err(Stop::Deadline) => HashMap::new(),
            Err(Stop::Failed(e)) => {
                report.failures.push(format!("{flow_id}: {e}"));
                HashMap::new()
            }
        };
        for p in items {
            let enrichment = match found.get(&pending_key(p)) {
                Some(e) => Some(e),
                None if give_up(p) => None,
                None => {
                    report.left += 1;
                    continue;
                }
            };
            if Instant::now() >= deadline {
                report.left += 1;
                continue;
            }
            match self.resolve(p, enrichment, deadline).await {
                Ok(()) => {
                    self.failing
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&pending_key(p));
                    if enrichment.is_some() {
                        report.enriched += 1;
                        self.stats.enriched.fetch_add(1, Ordering::Relaxed);
                    } else {
                        report.gave_up += 1;
                    }
                }
                Err(e) => self.item_failed(p, &e, report),
            }
        }
    }

    /// Records a session whose write failed: it stays pending, and goes
    /// after the others from now on.
    fn item_failed(&self, p: &PendingEnrichment, e: &AnalyticsError, report: &mut SweepReport) {
        tracing::warn!(
            conversation_id = %p.conversation_id,
            session_key = %p.session_key,
            flow_id = %p.flow_id,
            error = %e,
            "enrichment write failed; the session stays pending and goes last next sweep"
        );
        report.left += 1;
        report
            .item_failures
            .push(format!("{}: {e}", pending_key(p)));
        let mut failing = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        if failing.len() >= 10_000 {
            failing.clear();
        }
        failing.insert(pending_key(p));
    }

    /// Reads the name of each flow in `flow_ids` not known yet
    /// (`GET /api/v2/flows/{flowId}`, permission `architect:flow:view`) and
    /// stores it beside the aggregates, so the dashboard never calls Genesys
    /// Cloud. One call per flow and container, at most
    /// [`NAMES_PER_SWEEP`] a sweep; a 403 or 404 waits an hour (the
    /// dashboard shows the id meanwhile), any other failure the next sweep.
    /// Never fails the sweep. Returns how many were stored.
    async fn resolve_names(&self, flow_ids: &[String], now: i64, deadline: Instant) -> usize {
        let mut stored = 0;
        let mut asked = 0;
        for id in flow_ids {
            if asked >= NAMES_PER_SWEEP {
                break;
            }
            let due = match self.names.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
                Some(None) => false,
                Some(Some(retry_at)) => now >= *retry_at,
                None => true,
            };
            if !due || Instant::now() >= deadline {
                continue;
            }
            asked += 1;
            let known = match self.read_name(id, now, deadline).await {
                NameRead::Stored => {
                    stored += 1;
                    None
                }
                NameRead::RetryAt(at) => Some(at),
                NameRead::NextSweep => continue,
            };
            let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
            if names.len() > 10_000 {
                names.clear();
            }
            names.insert(id.clone(), known);
        }
        stored
    }

    /// Reads one flow's name and stores it.
    async fn read_name(&self, id: &str, now: i64, deadline: Instant) -> NameRead {
        let path = format!("/api/v2/flows/{}", encode_component(id));
        match get_retrying(&self.access, &self.stats.api, id, &path, deadline, 2).await {
            Ok(flow) => match flow["name"].as_str().filter(|n| !n.is_empty()) {
                Some(name) => {
                    let name: String = name.chars().take(200).collect();
                    match self.store.put_flow_name(id, &name, now).await {
                        Ok(()) => NameRead::Stored,
                        Err(e) => {
                            tracing::warn!(flow_id = %id, error = %e, "flow name not stored; next sweep");
                            NameRead::NextSweep
                        }
                    }
                }
                None => NameRead::RetryAt(now.saturating_add(NAME_RETRY_MS)),
            },
            // Missing permission or no such flow: an hour.
            Err(GetError::Api(
                e @ genesys::ApiError::Status {
                    status: 403 | 404, ..
                },
            )) => {
                tracing::warn!(flow_id = %id, error = %e, "flow name not readable; the dashboard shows the id (grant architect:flow:view)");
                NameRead::RetryAt(now.saturating_add(NAME_RETRY_MS))
            }
            Err(GetError::Deadline) => NameRead::NextSweep,
            Err(e) => {
                let e = match e {
                    GetError::Token(e) => e.to_string(),
                    GetError::Api(e) => e.to_string(),
                    GetError::GaveUp(last) => last,
                    GetError::Deadline => "no time left".into(),
                };
                tracing::warn!(flow_id = %id, error = %e, "flow name not read; next sweep");
                NameRead::NextSweep
            }
        }
    }

    /// The sessions of one group of one flow, matched one to one: each
    /// pending session takes the unclaimed API session of its conversation
    /// whose completion is nearest its `flow.end`, within the skew. A
    /// session with no turns gets the intent [`NO_TURNS_INTENT`]
    /// (ASSUMPTION: the analytics API lists a session's turns no later than
    /// the session itself, as the simulator does).
    ///
    /// [`NO_TURNS_INTENT`]: va_analytics::kpi::NO_TURNS_INTENT
    async fn lookup(
        &self,
        flow_id: &str,
        items: &[PendingEnrichment],
        deadline: Instant,
    ) -> Result<HashMap<String, Enrichment>, Stop> {
        let skew = ms(self.cfg.skew);
        let from = items.iter().map(|p| p.end_ms).min().unwrap_or(0);
        let to = items.iter().map(|p| p.end_ms).max().unwrap_or(0);
        let window = interval(from.saturating_sub(skew), to.saturating_add(skew))
            .ok_or_else(|| Stop::Failed("the sessions' end times are out of range".into()))?;
        let flow = encode_component(flow_id);
        let first = format!(
            "/api/v2/analytics/botflows/{flow}/sessions?interval={}&pageSize={PAGE_SIZE}",
            encode_component(&window)
        );
        let entities = self.pages(&first, flow_id, deadline).await?;
        let matched = match_sessions(items, sessions_by_conversation(entities), skew);
        if matched.is_empty() {
            return Ok(HashMap::new());
        }
        // One turns query over the matched sessions' lifetimes; the last turn
        // (latest dateCreated) of each carries its final intent.
        let from = matched.iter().map(|(_, s)| s.created_ms).min().unwrap_or(0);
        let to = matched
            .iter()
            .map(|(_, s)| s.completed_ms)
            .max()
            .unwrap_or(0);
        let window = interval(from.saturating_sub(1_000), to.saturating_add(skew))
            .ok_or_else(|| Stop::Failed("the sessions' times are out of range".into()))?;
        let first = format!(
            "/api/v2/analytics/botflows/{flow}/divisions/reportingturns?interval={}&pageSize={PAGE_SIZE}",
            encode_component(&window)
        );
        let turns = self.pages(&first, flow_id, deadline).await?;
        Ok(enrichments(matched, last_turns(turns)))
    }

    /// Every entity of a listing, following relative `nextUri`s.
    async fn pages(&self, first: &str, key: &str, deadline: Instant) -> Result<Vec<Value>, Stop> {
        let mut out = Vec::new();
        let mut path = first.to_string();
        loop {
            let page = self.get(&path, key, deadline).await?;
            if let Some(entities) = page["entities"].as_array() {
                out.extend(entities.iter().cloned());
            }
            match page["nextUri"].as_str() {
                Some(next) if next.starts_with("/api/v2/") && next != path => {
                    path = next.to_string()
                }
                _ => return Ok(out),
            }
        }
    }

    /// One GET, at most [`MAX_TRIES`] tries.
    async fn get(&self, path: &str, key: &str, deadline: Instant) -> Result<Value, Stop> {
        get_retrying(
            &self.access,
            &self.stats.api,
            key,
            path,
            deadline,
            MAX_TRIES,
        )
        .await
        .map_err(|e| match e {
            GetError::Token(e) => Stop::Failed(e.to_string()),
            GetError::Api(e) => Stop::Failed(e.to_string()),
            GetError::GaveUp(last) => {
                Stop::Failed(format!("still failing ({last}); the sessions stay pending"))
            }
            GetError::Deadline => Stop::Deadline,
        })
    }

    /// Applies one session's enrichment (or its giving up) exactly once,
    /// retrying conflicts, throttles and DynamoDB's server errors with
    /// backoff, at most [`MAX_WRITE_TRIES`] times and never past `deadline`.
    async fn resolve(
        &self,
        p: &PendingEnrichment,
        found: Option<&Enrichment>,
        deadline: Instant,
    ) -> Result<(), AnalyticsError> {
        (|| self.resolve_once(p, found))
            .retry(
                store_backoff(Duration::from_millis(20), Duration::from_secs(1))
                    .with_max_times(MAX_WRITE_TRIES - 1),
            )
            .sleep(tokio::time::sleep)
            .when(AnalyticsError::is_transient)
            .adjust(|_, wait| wait.filter(|w| Instant::now() + *w < deadline))
            .notify(|_, _| {
                self.stats.write_retries.fetch_add(1, Ordering::Relaxed);
            })
            .await
    }

    /// One try of [`Self::resolve`]: read the state if a transfer needs it,
    /// plan, admit names, apply.
    async fn resolve_once(
        &self,
        p: &PendingEnrichment,
        found: Option<&Enrichment>,
    ) -> Result<(), AnalyticsError> {
        let needs_state = found
            .and_then(|e| e.bot_result.as_deref())
            .is_some_and(va_analytics::kpi::is_transfer_result);
        let read = if needs_state {
            self.store.read_state(&p.conversation_id).await?
        } else {
            StateRead::default()
        };
        let mut plan = plan_enrichment(p, found, needs_state.then_some(&read.state));
        self.store.admit_names(&mut plan).await?;
        self.store
            .apply(&plan, self.clock.now_ms(), read.version, Some(p))
            .await
            .map(|_| ())
    }
}

/// Groups of pending sessions to look up together: one bot flow, end times
/// close together (a new group after a gap of two skews or past
/// [`MAX_WINDOW`]), so one stuck session never widens a busy flow's
/// queries. Oldest first, so old groups get done (or given up) before new
/// ones; sessions in `failing` go after every other, in groups of their own.
fn groups(
    pending: Vec<PendingEnrichment>,
    skew: i64,
    failing: &HashSet<String>,
) -> Vec<Vec<PendingEnrichment>> {
    let mut by_flow: BTreeMap<(bool, String), Vec<PendingEnrichment>> = BTreeMap::new();
    for p in pending {
        let last = failing.contains(&pending_key(&p));
        by_flow
            .entry((last, p.flow_id.clone()))
            .or_default()
            .push(p);
    }
    let mut groups: Vec<(bool, Vec<PendingEnrichment>)> = Vec::new();
    for ((last, _), mut items) in by_flow {
        items.sort_by_key(|p| p.end_ms);
        let mut group: Vec<PendingEnrichment> = Vec::new();
        for p in items {
            let split = match (group.first(), group.last()) {
                (Some(first), Some(prev)) => {
                    p.end_ms.saturating_sub(prev.end_ms) > skew.saturating_mul(2)
                        || p.end_ms.saturating_sub(first.end_ms) > ms(MAX_WINDOW)
                }
                _ => false,
            };
            if split {
                groups.push((last, std::mem::take(&mut group)));
            }
            group.push(p);
        }
        groups.push((last, group));
    }
    groups.sort_by_key(|(last, g)| (*last, g.first().map_or(i64::MAX, |p| p.end_ms)));
    groups.into_iter().map(|(_, g)| g).collect()
}

/// How reading a flow's name went.
enum NameRead {
    /// Read and stored.
    Stored,
    /// Not readable (no permission, no such flow, no name): ask again then.
    RetryAt(i64),
    /// Failed for now: ask again next sweep.
    NextSweep,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(flow: &str, conversation: &str, end_ms: i64) -> PendingEnrichment {
        PendingEnrichment {
            conversation_id: conversation.into(),
            session_key: "s".into(),
            flow_id: flow.into(),
            end_ms,
        }
    }

    fn ids(groups: &[Vec<PendingEnrichment>]) -> Vec<Vec<&str>> {
        groups
            .iter()
            .map(|g| g.iter().map(|p| p.conversation_id.as_str()).collect())
            .collect()
    }

    #[test]
    fn groups_are_oldest_first_split_by_gaps_and_failing_sessions_go_last() {
        let all = vec![
            pending("f", "old-failing", 0),
            pending("f", "old", 1_000),
            pending("f", "later", 600_000),
            pending("g", "other-flow", 500),
        ];
        let failing: HashSet<String> = ["old-failing#s".to_string()].into();
        let g = groups(all, 60_000, &failing);
        assert_eq!(
            ids(&g),
            vec![
                vec!["other-flow"],
                vec!["old"],
                vec!["later"],
                vec!["old-failing"]
            ]
        );
    }

    #[test]
    fn the_roll_up_keeps_a_quarter_of_the_sweep() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(100);
        assert_eq!(
            enrichment_deadline(start, deadline),
            start + Duration::from_secs(75)
        );
        // Past the deadline already: no time for enrichment at all.
        assert_eq!(enrichment_deadline(deadline, start), start);
    }
}
