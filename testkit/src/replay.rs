//! The one replay driver: generated traffic delivered to a fleet of
//! conversation-events containers the way EventBridge and Lambda deliver it
//! (at least once, a share of events twice, shuffled within a conversation, a
//! failed invocation delivered again up to a bound), on the simulator's clock,
//! with the scheduled refresher and injected faults. The tests, the benchmarks
//! and the local stack all drive the product through it, then compare the
//! store with the generator's ground truth, number for number.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;
use va_analytics::{AnalyticsStore, Applied, Bucket, Scope, attr, duration_bucket};
use va_enrichment::Sweeper;
use va_enrichment::lookup::ApiAccess;
use va_handler::{EventHandler, HandleError, Handled};

use crate::product::Broker;
use crate::sim::{FaultSide, Faults, Simulator};
use crate::traffic::{GroundTruth, Kpis, Traffic};

/// One delivery: the event, and when (simulated) EventBridge hands it over.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Epoch ms on the simulator's clock.
    pub at_ms: i64,
    /// The EventBridge envelope.
    pub event: Value,
}

/// How events are delivered more than once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Repeats {
    /// Share of events delivered twice with the same EventBridge id (retries).
    pub duplicates: f64,
    /// Share of events Genesys sends again: a new EventBridge id, the same content.
    pub resends: f64,
}

/// The delivery order: events shuffled within each conversation (keeping the
/// conversation's slots in the stream), plus the repeats, each at a random
/// later point.
pub fn deliveries(traffic: &Traffic, repeats: Repeats, seed: u64) -> Vec<Delivery> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut slots: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in traffic.events.iter().enumerate() {
        slots.entry(e.conversation_id.as_str()).or_default().push(i);
    }
    let mut order: Vec<usize> = (0..traffic.events.len()).collect();
    let mut conversations: Vec<&Vec<usize>> = slots.values().collect();
    conversations.sort();
    for positions in conversations {
        let mut shuffled = positions.clone();
        shuffled.shuffle(&mut rng);
        for (slot, event) in positions.iter().zip(shuffled) {
            order[*slot] = event;
        }
    }
    // A shuffled event takes the delivery time of the slot it lands in, but
    // is never delivered before it happened: EventBridge can reorder and
    // delay, not deliver a flow.end before the flow ended.
    let mut out: Vec<Delivery> = order
        .iter()
        .enumerate()
        .map(|(slot, i)| Delivery {
            at_ms: traffic.events[slot].at_ms.max(traffic.events[*i].at_ms),
            event: traffic.events[*i].envelope.clone(),
        })
        .collect();
    out.sort_by_key(|d| d.at_ms);
    let count = |share: f64| (traffic.events.len() as f64 * share).round() as usize;
    for (n, resend) in [
        (count(repeats.duplicates), false),
        (count(repeats.resends), true),
    ] {
        let mut picks: Vec<usize> = (0..traffic.events.len()).collect();
        picks.shuffle(&mut rng);
        for i in picks.into_iter().take(n) {
            let at = rng.random_range(i.min(out.len())..=out.len());
            let own = traffic.events[i].at_ms;
            let at_ms = out.get(at).map_or(own, |d| d.at_ms.max(own));
            let mut event = traffic.events[i].envelope.clone();
            if resend {
                let id = event["id"].as_str().unwrap_or_default().to_string();
                event["id"] = Value::String(format!("{id}-resent"));
            }
            out.insert(at, Delivery { at_ms, event });
        }
    }
    out.sort_by_key(|d| d.at_ms);
    out
}

/// Faults to inject, in simulated time from the first delivery.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FaultPlan {
    /// Revoke every token every N minutes.
    pub revoke_every_min: Option<u32>,
    /// The org's idle-token timeout, seconds.
    pub idle_timeout_s: Option<u64>,
    /// Live tokens per client before the oldest is revoked (simulator assumption).
    pub token_cap: Option<usize>,
    /// A storm of N 429s on the API every 10 minutes.
    pub api_429_storm: Option<u32>,
    /// The token endpoint answers 5xx for N minutes, from minute 20.
    pub token_endpoint_outage_min: Option<u32>,
}

/// Why an invocation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeError {
    /// The event is malformed: no retry helps.
    Rejected(String),
    /// Anything else: Lambda would retry it.
    Failed(String),
}

impl From<HandleError> for InvokeError {
    fn from(e: HandleError) -> Self {
        match e {
            HandleError::Rejected(r) => InvokeError::Rejected(r.to_string()),
            other => InvokeError::Failed(other.to_string()),
        }
    }
}

/// One simulated Lambda container of conversation-events.
pub trait Container: Send + Sync + 'static {
    /// One invocation with one event.
    fn invoke(
        &self,
        event: &Value,
        deadline: tokio::time::Instant,
    ) -> impl std::future::Future<Output = Result<Handled, InvokeError>> + Send;
    /// One invocation with a batch (the SQS path): one result per event.
    /// By default, one event after another.
    fn invoke_batch(
        &self,
        events: &[Value],
        deadline: tokio::time::Instant,
    ) -> impl std::future::Future<Output = Vec<Result<Handled, InvokeError>>> + Send {
        async move {
            let mut out = Vec::with_capacity(events.len());
            for e in events {
                out.push(self.invoke(e, deadline).await);
            }
            out
        }
    }
    /// Platform API work it did itself: (calls, retried after a 401, 429s waited out).
    fn api_stats(&self) -> (u64, u64, u64) {
        (0, 0, 0)
    }
}

impl Container for EventHandler {
    async fn invoke(
        &self,
        event: &Value,
        deadline: tokio::time::Instant,
    ) -> Result<Handled, InvokeError> {
        Ok(self.handle(event, deadline).await?)
    }

    async fn invoke_batch(
        &self,
        events: &[Value],
        deadline: tokio::time::Instant,
    ) -> Vec<Result<Handled, InvokeError>> {
        self.handle_batch(events, deadline)
            .await
            .into_iter()
            .map(|r| r.map_err(InvokeError::from))
            .collect()
    }
}

/// How the fleet is driven.
#[derive(Debug, Clone)]
pub struct DriveOptions {
    /// Simulated time per step; each step's deliveries run concurrently.
    pub step: Duration,
    /// Deliveries of one event before it counts as dead-lettered (Lambda's
    /// async invoke: the first try and two retries).
    pub max_attempts: u32,
    /// The refresher's schedule.
    pub refresher_every: Duration,
    /// The enrichment sweeper's schedule.
    pub sweeper_every: Duration,
    /// After the last delivery, keep the clock (and the schedules) going
    /// until nothing is pending, at most this long.
    pub drain: Duration,
    /// Time given to one invocation.
    pub invocation_timeout: Duration,
    /// Faults.
    pub faults: FaultPlan,
    /// The SQS path: each container takes its deliveries in batches of up
    /// to this many per invocation (a failed message comes back alone, as
    /// SQS redelivers it). `None`: one event per invocation.
    pub batch_size: Option<usize>,
    /// Where dead-lettered events go, as Lambda's on-failure destination
    /// writes them (an invocation record per event). `None`: only counted.
    pub dead_letters: Option<va_handler::DeadLetterQueue>,
}

impl Default for DriveOptions {
    fn default() -> Self {
        Self {
            step: Duration::from_secs(1),
            max_attempts: 3,
            refresher_every: Duration::from_secs(60),
            sweeper_every: Duration::from_secs(60),
            drain: Duration::from_secs(6 * 3_600),
            invocation_timeout: Duration::from_secs(10),
            faults: FaultPlan::default(),
            batch_size: None,
            dead_letters: None,
        }
    }
}

/// The containers of one run.
pub struct Fleet<C, A> {
    /// The conversation-events containers.
    pub containers: Vec<Arc<C>>,
    /// The scheduled token refresher, if the fleet has one.
    pub refresher: Option<Arc<Broker>>,
    /// The scheduled enrichment sweeper, if the fleet has one.
    pub sweeper: Option<Arc<Sweeper<A>>>,
}

/// What a drive did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DriveReport {
    /// Deliveries handed to the fleet (duplicates included, redeliveries not).
    pub deliveries: u64,
    /// Events counted.
    pub processed: u64,
    /// Deliveries recognised as already counted.
    pub duplicates: u64,
    /// Malformed events.
    pub rejected: u64,
    /// Failed invocations delivered again.
    pub redeliveries: u64,
    /// Events that failed every attempt.
    pub dead_lettered: u64,
    /// Failed invocations by error text (first 160 characters).
    pub errors: BTreeMap<String, u64>,
    /// Token requests the simulator saw.
    pub token_requests: u64,
    /// 401s the simulator answered.
    pub unauthorized: u64,
    /// 429s the simulator answered (limits and storms).
    pub rate_limited: u64,
    /// Calls the enrichers repeated after a 401.
    pub retried_after_401: u64,
    /// 429s the enrichers waited out.
    pub waited_out_429: u64,
    /// Revocations the fault plan made.
    pub revocations: u64,
    /// Platform API requests (containers and sweeper).
    pub api_calls: u64,
    /// Sessions the sweeper enriched.
    pub enriched: u64,
    /// Every ended bot session was enriched (or given up on) by the end.
    pub enrichment_complete: bool,
    /// The longest wait for enrichment a sweep saw (`oldest_pending_s`).
    pub enrichment_wait_max_s: u64,
    /// Write conflicts the containers retried.
    pub conflicts: u64,
    /// Invocations that failed on a conflict or a throttle.
    pub conflict_failures: u64,
    /// Simulated minutes driven.
    pub simulated_minutes: f64,
    /// Handler latency per invocation, microseconds, sorted.
    pub latencies_us: Vec<u64>,
    /// Lambda invocations of the handler containers.
    pub invocations: u64,
}

/// The `p`th percentile (0..=100) of sorted values; 0 when empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Progress: simulated minutes done, of the total.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Which container gets an event: by its id, as a stable hash (the product's).
fn container_of(delivery: &Delivery, n: usize) -> usize {
    let id = delivery.event["id"].as_str().unwrap_or_default();
    token_broker::slot_for(id, n)
}

#[derive(Default)]
struct Tally {
    invocations: u64,
    conflicts: u64,
    conflict_failures: u64,
    processed: u64,
    duplicates: u64,
    rejected: u64,
    redeliveries: u64,
    dead_lettered: u64,
    errors: BTreeMap<String, u64>,
    latencies_us: Vec<u64>,
    /// (event, error) of each dead-lettered event.
    letters: Vec<(Value, String)>,
}

/// The record Lambda's on-failure destination receives for an async
/// invocation whose retries ran out
/// (<https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html>).
pub fn on_failure_record(event: &Value, error: &str, attempts: u32, at_ms: i64) -> Value {
    serde_json::json!({
        "version": "1.0",
        "timestamp": crate::sim::iso(at_ms),
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:conversation-events:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "Store", "errorMessage": error}
    })
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The scheduled functions: the refresher and the sweeper.
#[derive(Default)]
struct Schedule {
    refresh_every: i64,
    sweep_every: i64,
    last_refresh: Option<i64>,
    last_sweep: Option<i64>,
    /// 1 while sessions wait for enrichment.
    pending: u64,
    /// The longest wait for enrichment a sweep saw, seconds.
    wait_max_s: u64,
}

impl Schedule {
    async fn at<C, A: ApiAccess>(&mut self, fleet: &Fleet<C, A>, now: i64) {
        if let Some(r) = &fleet.refresher
            && self
                .last_refresh
                .is_none_or(|l| now - l >= self.refresh_every)
        {
            self.last_refresh = Some(now);
            r.tick().await;
        }
        if let Some(s) = &fleet.sweeper
            && self.last_sweep.is_none_or(|l| now - l >= self.sweep_every)
        {
            self.last_sweep = Some(now);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            match s.sweep(deadline).await {
                Ok(r) => self.wait_max_s = self.wait_max_s.max(r.oldest_pending_s),
                Err(e) => tracing::warn!(error = %e, "sweep failed"),
            }
            self.pending = match s.has_pending().await {
                Ok(false) => 0,
                _ => 1,
            };
        }
    }
}

/// Injects the fault plan's faults as simulated time passes.
struct FaultClock {
    plan: FaultPlan,
    start: i64,
    last_revoke: i64,
    last_storm: i64,
    outage_on: bool,
    revocations: u64,
}

impl FaultClock {
    fn new(plan: FaultPlan, start: i64) -> Self {
        Self {
            plan,
            start,
            last_revoke: start,
            last_storm: start,
            outage_on: false,
            revocations: 0,
        }
    }

    fn at(&mut self, sim: &Simulator, now: i64) {
        if let Some(every) = self.plan.revoke_every_min
            && now - self.last_revoke >= i64::from(every.max(1)) * 60_000
        {
            self.last_revoke = now;
            self.revocations += 1;
            sim.revoke_all();
        }
        if let Some(storm) = self.plan.api_429_storm
            && now - self.last_storm >= 600_000
        {
            self.last_storm = now;
            sim.set_faults(
                FaultSide::Api,
                Faults {
                    storm_429: storm,
                    storm_retry_after_s: 1,
                    ..Faults::default()
                },
            );
        }
        if let Some(minutes) = self.plan.token_endpoint_outage_min {
            let from = self.start + 20 * 60_000;
            let until = from + i64::from(minutes) * 60_000;
            let on = now >= from && now < until;
            if on != self.outage_on {
                self.outage_on = on;
                let faults = if on {
                    Faults {
                        errors_5xx: u32::MAX,
                        ..Faults::default()
                    }
                } else {
                    Faults::default()
                };
                sim.set_faults(FaultSide::Token, faults);
            }
        }
    }
}

/// Drives `deliveries` through `fleet` on `sim`'s clock, `opts.step` at a
/// time: each step runs the refresher when due, injects faults, then hands
/// that step's deliveries (and the last step's failures) to the containers,
/// one at a time per container, all containers concurrently.
pub async fn drive<C: Container, A: ApiAccess>(
    sim: &Simulator,
    fleet: &Fleet<C, A>,
    deliveries: Vec<Delivery>,
    opts: &DriveOptions,
    progress: Progress,
) -> DriveReport {
    let clock = sim.clock();
    let total = deliveries.len() as u64;
    let start = clock.now_ms();
    let end = deliveries.iter().map(|d| d.at_ms).max().unwrap_or(start);
    let n = fleet.containers.len().max(1);
    let mut pending: std::collections::VecDeque<(Delivery, u32)> =
        deliveries.into_iter().map(|d| (d, 1)).collect();
    let mut retry: Vec<(Delivery, u32)> = Vec::new();
    let before = sim.counters();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut faults = FaultClock::new(opts.faults.clone(), start);
    let mut schedule = Schedule {
        refresh_every: ms(opts.refresher_every),
        sweep_every: ms(opts.sweeper_every),
        ..Schedule::default()
    };
    let total_minutes = u64::try_from((end - start) / 60_000 + 1).unwrap_or(1);
    let mut now = start;
    while !pending.is_empty() || !retry.is_empty() {
        schedule.at(fleet, now).await;
        faults.at(sim, now);
        let mut batches: Vec<Vec<(Delivery, u32)>> = vec![Vec::new(); n];
        for (d, attempt) in retry.drain(..) {
            batches[container_of(&d, n)].push((d, attempt));
        }
        while let Some((d, attempt)) = pending.pop_front() {
            if d.at_ms > now {
                pending.push_front((d, attempt));
                break;
            }
            batches[container_of(&d, n)].push((d, attempt));
        }
        let mut tasks = Vec::new();
        for (h, batch) in fleet.containers.iter().zip(batches) {
            if batch.is_empty() {
                continue;
            }
            let (h, tally, max_attempts, timeout) = (
                h.clone(),
                tally.clone(),
                opts.max_attempts,
                opts.invocation_timeout,
            );
            let batch_size = opts.batch_size;
            tasks.push(tokio::spawn(async move {
                let mut failed = Vec::new();
                // A redelivered message comes back alone; fresh ones are
                // batched when the fleet runs the SQS path.
                let mut invocations: Vec<Vec<(Delivery, u32)>> = Vec::new();
                let mut fresh = Vec::new();
                for (d, attempt) in batch {
                    if attempt > 1 || batch_size.is_none() {
                        invocations.push(vec![(d, attempt)]);
                    } else {
                        fresh.push((d, attempt));
                    }
                }
                if let Some(size) = batch_size {
                    let mut it = fresh.into_iter().peekable();
                    while it.peek().is_some() {
                        invocations.push(it.by_ref().take(size.max(1)).collect());
                    }
                }
                for invocation in invocations {
                    let t = tokio::time::Instant::now();
                    let results = if batch_size.is_some() {
                        let events: Vec<Value> =
                            invocation.iter().map(|(d, _)| d.event.clone()).collect();
                        h.invoke_batch(&events, t + timeout).await
                    } else {
                        let mut out = Vec::new();
                        for (d, _) in &invocation {
                            out.push(h.invoke(&d.event, t + timeout).await);
                        }
                        out
                    };
                    let micros = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
                    let mut s = tally.lock().await;
                    s.invocations += 1;
                    s.latencies_us.push(micros);
                    for ((d, attempt), r) in invocation.into_iter().zip(results) {
                        match r {
                            Ok(x) if x.applied == Applied::Duplicate => {
                                s.conflicts += u64::from(x.conflicts);
                                s.duplicates += 1
                            }
                            Ok(x) => {
                                s.conflicts += u64::from(x.conflicts);
                                s.processed += 1
                            }
                            Err(InvokeError::Rejected(_)) => s.rejected += 1,
                            Err(InvokeError::Failed(e)) => {
                                *s.errors.entry(e.chars().take(160).collect()).or_default() += 1;
                                let lower = e.to_ascii_lowercase();
                                if lower.contains("conflict") || lower.contains("throttl") {
                                    s.conflict_failures += 1;
                                }
                                if attempt < max_attempts {
                                    s.redeliveries += 1;
                                    failed.push((d, attempt + 1));
                                } else {
                                    s.dead_lettered += 1;
                                    s.letters.push((d.event.clone(), e.clone()));
                                }
                            }
                        }
                    }
                }
                failed
            }));
        }
        for t in tasks {
            retry.extend(t.await.unwrap_or_default());
        }
        clock.advance(opts.step);
        now = clock.now_ms();
        progress(
            u64::try_from((now - start) / 60_000)
                .unwrap_or(0)
                .min(total_minutes),
            total_minutes,
        );
    }
    // The tail: the schedules keep running until enrichment is done. The
    // last sweep ran before the last deliveries, so look again first.
    if let Some(s) = &fleet.sweeper {
        schedule.pending = u64::from(s.has_pending().await.unwrap_or(true));
    }
    let drain_until = now.saturating_add(ms(opts.drain));
    while fleet.sweeper.is_some() && schedule.pending > 0 && now < drain_until {
        schedule.at(fleet, now).await;
        faults.at(sim, now);
        clock.advance(opts.sweeper_every.min(opts.refresher_every));
        now = clock.now_ms();
    }
    let after = sim.counters();
    let own = fleet
        .containers
        .iter()
        .map(|c| c.api_stats())
        .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
    let swept = fleet.sweeper.as_ref().map_or((0, 0, 0, 0), |s| {
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        (
            load(&s.stats.api.api_calls),
            load(&s.stats.api.retried_after_401),
            load(&s.stats.api.rate_limited),
            load(&s.stats.enriched),
        )
    });
    let mut t = std::mem::take(&mut *tally.lock().await);
    t.latencies_us.sort_unstable();
    if let Some(q) = &opts.dead_letters {
        for (event, error) in &t.letters {
            let record = on_failure_record(event, error, opts.max_attempts, now);
            if let Err(e) = q.send_raw(&record.to_string()).await {
                *t.errors
                    .entry(format!("dead-letter send: {e}"))
                    .or_default() += 1;
            }
        }
    }
    DriveReport {
        deliveries: total,
        processed: t.processed,
        duplicates: t.duplicates,
        rejected: t.rejected,
        redeliveries: t.redeliveries,
        dead_lettered: t.dead_lettered,
        errors: t.errors,
        token_requests: after.token_requests - before.token_requests,
        unauthorized: after.unauthorized_total - before.unauthorized_total,
        rate_limited: (after.api_rate_limited + after.injected_429)
            - (before.api_rate_limited + before.injected_429),
        retried_after_401: own.1 + swept.1,
        waited_out_429: own.2 + swept.2,
        revocations: faults.revocations,
        api_calls: own.0 + swept.0,
        enriched: swept.3,
        enrichment_complete: fleet.sweeper.is_none() || schedule.pending == 0,
        enrichment_wait_max_s: schedule.wait_max_s,
        conflicts: t.conflicts,
        conflict_failures: t.conflict_failures,
        invocations: t.invocations,
        simulated_minutes: (now - start) as f64 / 60_000.0,
        latencies_us: t.latencies_us,
    }
}

fn kpi_counters(k: &Kpis) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    let mut put = |name: &str, v: u64| {
        if v != 0 {
            m.insert(name.to_string(), i64::try_from(v).unwrap_or(i64::MAX));
        }
    };
    put(attr::STARTED, k.sessions_started);
    put(attr::ENDED, k.sessions_ended);
    put(attr::ACTIVE, k.active);
    put(attr::CONTAINED, k.contained);
    put(attr::ESCALATED, k.escalated);
    put(attr::ABANDONED, k.abandoned);
    put(attr::RECOGNITION_FAILURES, k.recognition_failures);
    put(attr::ERRORS, k.errors);
    put(attr::OTHER_EXITS, k.other_exits);
    put(attr::UNKNOWN_OUTCOMES, k.unknown_outcomes);
    put(attr::DURATION_MS_SUM, k.duration_ms_sum);
    put(attr::DURATION_COUNT, k.duration_count);
    for (intent, n) in &k.intents {
        put(&format!("{}{intent}", attr::INTENT_PREFIX), *n);
    }
    for (id, o) in &k.outcomes {
        put(&format!("{}{id}#success", attr::OUTCOME_PREFIX), o.success);
        put(&format!("{}{id}#failure", attr::OUTCOME_PREFIX), o.failure);
    }
    m
}

/// Counters the truth does not track per minute (events, histogram).
fn comparable(b: &Bucket) -> BTreeMap<String, i64> {
    b.counters
        .iter()
        .filter(|(k, v)| {
            **v != 0
                && k.as_str() != attr::EVENTS
                && k.as_str() != attr::UNKNOWN_TOPICS
                && !k.starts_with(attr::DURATION_BUCKET_PREFIX)
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// The base KPIs (everything but intents, which come later) of the minutes
/// in `[from_ms, to_ms]`, org-wide and per flow: every difference.
pub async fn compare_base(
    store: &AnalyticsStore,
    truth: &GroundTruth,
    from_ms: i64,
    to_ms: i64,
) -> Vec<String> {
    let base = |m: BTreeMap<String, i64>| -> BTreeMap<String, i64> {
        m.into_iter()
            .filter(|(k, _)| !k.starts_with(attr::INTENT_PREFIX))
            .collect()
    };
    let mut diffs = Vec::new();
    let mut scopes = vec![(Scope::Org, &truth.by_minute)];
    for (flow, minutes) in &truth.by_flow_minute {
        scopes.push((Scope::Flow(flow.clone()), minutes));
    }
    for (scope, expected) in scopes {
        let stored = match store.query(&scope, from_ms, to_ms).await {
            Ok(b) => b,
            Err(e) => return vec![e.to_string()],
        };
        let stored: BTreeMap<i64, BTreeMap<String, i64>> = stored
            .iter()
            .map(|b| (b.minute_ms, base(comparable(b))))
            .collect();
        for (m, k) in expected.range(from_ms..=to_ms) {
            let want = base(kpi_counters(k));
            let got = stored.get(m).cloned().unwrap_or_default();
            if want != got {
                diffs.push(format!(
                    "{scope:?} minute {m}: expected {want:?}, stored {got:?}"
                ));
            }
        }
    }
    diffs
}

/// Every difference between the store and the truth; empty when exact.
pub async fn compare(
    store: &AnalyticsStore,
    truth: &GroundTruth,
    from_ms: i64,
    to_ms: i64,
) -> Vec<String> {
    let mut diffs = Vec::new();
    let check = |diffs: &mut Vec<String>,
                 scope: &str,
                 expected: &BTreeMap<i64, Kpis>,
                 actual: &[Bucket]| {
        let actual: BTreeMap<i64, BTreeMap<String, i64>> = actual
            .iter()
            .map(|b| (b.minute_ms, comparable(b)))
            .collect();
        let minutes: std::collections::BTreeSet<i64> =
            expected.keys().chain(actual.keys()).copied().collect();
        for m in minutes {
            let want = expected.get(&m).map(kpi_counters).unwrap_or_default();
            let got = actual.get(&m).cloned().unwrap_or_default();
            if want != got {
                diffs.push(format!(
                    "{scope} minute {m}: expected {want:?}, stored {got:?}"
                ));
            }
        }
    };
    let org = match store.query(&Scope::Org, from_ms, to_ms).await {
        Ok(b) => b,
        Err(e) => return vec![e.to_string()],
    };
    check(&mut diffs, "org", &truth.by_minute, &org);
    for (flow, minutes) in &truth.by_flow_minute {
        match store
            .query(&Scope::Flow(flow.clone()), from_ms, to_ms)
            .await
        {
            Ok(b) => check(&mut diffs, &format!("flow {flow}"), minutes, &b),
            Err(e) => diffs.push(e.to_string()),
        }
    }
    // Whole-run totals the truth keeps only in aggregate.
    let sum = |name: &str| {
        org.iter()
            .map(|b| b.counters.get(name).copied().unwrap_or(0))
            .sum::<i64>()
    };
    let mut histogram: BTreeMap<String, i64> = BTreeMap::new();
    for d in &truth.durations_ms {
        *histogram
            .entry(duration_bucket(i64::try_from(*d).unwrap_or(i64::MAX)))
            .or_default() += 1;
    }
    for (bucket, n) in &histogram {
        if sum(bucket) != *n {
            diffs.push(format!("{bucket}: expected {n}, stored {}", sum(bucket)));
        }
    }
    diffs
}
