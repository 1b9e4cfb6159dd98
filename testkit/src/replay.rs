//! Replays generated traffic through conversation-events handlers the way
//! EventBridge delivers it: at least once (a share of events twice), out of
//! order within a conversation, retried after a failed invocation. Then checks
//! the store against the generator's ground truth, number for number.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;
use va_analytics::{AnalyticsStore, Applied, Bucket, Scope, attr, duration_bucket};
use va_handler::enrich::ApiAccess;
use va_handler::EventHandler;

use crate::sim::SimClock;
use crate::traffic::{GroundTruth, Kpis, Traffic};

/// The delivery order: events shuffled within each conversation (keeping the
/// conversation's slots in the stream), plus `duplicate_share` of them again
/// at a random later point.
/// One delivery: the event, and when (simulated) EventBridge hands it over.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub at_ms: i64,
    pub event: Value,
}

pub fn deliveries(traffic: &Traffic, duplicate_share: f64, seed: u64) -> Vec<Delivery> {
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
    // A shuffled event takes the delivery time of the slot it lands in.
    let mut out: Vec<Delivery> = order
        .iter()
        .enumerate()
        .map(|(slot, i)| Delivery {
            at_ms: traffic.events[slot].at_ms,
            event: traffic.events[*i].envelope.clone(),
        })
        .collect();
    let dups = (traffic.events.len() as f64 * duplicate_share).round() as usize;
    let mut picks: Vec<usize> = (0..traffic.events.len()).collect();
    picks.shuffle(&mut rng);
    for i in picks.into_iter().take(dups) {
        let at = rng.random_range(i.min(out.len())..=out.len());
        let at_ms = out.get(at).map_or(traffic.events[i].at_ms, |d| d.at_ms);
        out.insert(
            at,
            Delivery {
                at_ms,
                event: traffic.events[i].envelope.clone(),
            },
        );
    }
    out
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplayReport {
    pub deliveries: usize,
    pub processed: usize,
    pub duplicates: usize,
    /// Invocations that failed and were delivered again.
    pub redeliveries: usize,
    /// Events still failing after `max_attempts`.
    pub lost: usize,
    /// Failed invocations by error kind (the error text up to its first colon).
    pub errors: BTreeMap<String, usize>,
    /// Handler latency per invocation, microseconds, sorted.
    pub latencies_us: Vec<u64>,
}

impl ReplayReport {
    pub fn latency_percentile_us(&self, p: f64) -> u64 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * self.latencies_us.len() as f64)
            .ceil()
            .max(1.0) as usize;
        self.latencies_us[rank.min(self.latencies_us.len()) - 1]
    }
}

/// Delivers `events` to `handlers` (one worker each, one event at a time, like
/// Lambda containers). A failed invocation goes to the back of the queue, up
/// to `max_attempts`. `on_progress(n)` runs after the n-th delivery finishes.
/// The clock follows the deliveries' times (never backwards).
pub async fn run<A: ApiAccess>(
    clock: Arc<SimClock>,
    handlers: Vec<Arc<EventHandler<A>>>,
    events: Vec<Delivery>,
    max_attempts: u32,
    on_progress: impl Fn(usize) + Send + Sync + 'static,
) -> ReplayReport {
    let total = events.len();
    let queue = Arc::new(Mutex::new(
        events
            .into_iter()
            .map(|e| (e, 1u32))
            .collect::<VecDeque<_>>(),
    ));
    let done = Arc::new(AtomicUsize::new(0));
    let report = Arc::new(Mutex::new(ReplayReport {
        deliveries: total,
        ..ReplayReport::default()
    }));
    let on_progress = Arc::new(on_progress);
    let mut workers = Vec::new();
    for h in handlers {
        let (queue, done, report, on_progress, clock) = (
            queue.clone(),
            done.clone(),
            report.clone(),
            on_progress.clone(),
            clock.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let Some((delivery, attempt)) = queue.lock().await.pop_front() else {
                    break;
                };
                clock.advance_to(delivery.at_ms);
                let started = tokio::time::Instant::now();
                let result = h
                    .handle(&delivery.event, started + Duration::from_secs(15))
                    .await;
                let micros = started.elapsed().as_micros() as u64;
                let mut r = report.lock().await;
                r.latencies_us.push(micros);
                match result {
                    Ok(h) if h.applied == Applied::Processed => r.processed += 1,
                    Ok(_) => r.duplicates += 1,
                    Err(e) if attempt < max_attempts => {
                        let text = e.to_string();
                        *r.errors
                            .entry(text.chars().take(160).collect())
                            .or_default() += 1;
                        r.redeliveries += 1;
                        drop(r);
                        queue.lock().await.push_back((delivery, attempt + 1));
                        continue;
                    }
                    Err(e) => {
                        *r.errors
                            .entry(e.to_string().chars().take(160).collect())
                            .or_default() += 1;
                        r.lost += 1
                    }
                }
                drop(r);
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                on_progress(n);
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let mut r = report.lock().await.clone();
    r.latencies_us.sort_unstable();
    r
}

fn kpi_counters(k: &Kpis) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    let mut put = |name: &str, v: u64| {
        if v != 0 {
            m.insert(name.to_string(), v as i64);
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
    if sum(attr::EVENTS) != truth.events as i64 {
        diffs.push(format!(
            "events: expected {}, stored {}",
            truth.events,
            sum(attr::EVENTS)
        ));
    }
    let mut histogram: BTreeMap<String, i64> = BTreeMap::new();
    for d in &truth.durations_ms {
        *histogram.entry(duration_bucket(*d as i64)).or_default() += 1;
    }
    for (bucket, n) in &histogram {
        if sum(bucket) != *n {
            diffs.push(format!("{bucket}: expected {n}, stored {}", sum(bucket)));
        }
    }
    diffs
}
