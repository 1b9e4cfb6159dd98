//! Drives a fleet of simulated Lambda containers through generated traffic on
//! the simulator's clock, and the naive container the product must beat: each
//! container fetches its own token and re-fetches it on a fixed timer.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;

use crate::sim::{Counters, SimClock};
use crate::traffic::{Event, Traffic};

/// What one container did with one event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Handled {
    /// The event's API work finished.
    pub ok: bool,
    /// API calls that answered 401.
    pub unauthorized: u32,
    /// API calls that answered 429.
    pub rate_limited: u32,
    /// Calls repeated after a failure.
    pub retries: u32,
}

/// One simulated Lambda container.
pub trait Container: Send + 'static {
    /// Runs on every clock step (timers).
    fn tick(&mut self, now_ms: i64) -> impl Future<Output = ()> + Send;
    /// Handles one event, the way a Lambda invocation would.
    fn handle(&mut self, event: &Event, now_ms: i64) -> impl Future<Output = Handled> + Send;
}

/// What a fleet run reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FleetReport {
    pub containers: usize,
    pub events: u64,
    pub events_failed: u64,
    pub simulated_minutes: f64,
    /// Seen by the simulator.
    pub token_requests: u64,
    pub unauthorized: u64,
    pub rate_limited: u64,
    /// Seen by the clients.
    pub client_unauthorized: u64,
    pub client_rate_limited: u64,
    pub retries: u64,
}

/// Replays `traffic` through `n` containers in simulated time: the clock moves
/// `step` at a time and each step's events are handled concurrently (one at a
/// time per container). Events go to containers by a hash of their id.
///
/// `background` containers (a scheduled refresher) get every tick but no events.
pub async fn drive<C, B, F>(
    clock: &SimClock,
    traffic: &Traffic,
    n: usize,
    step: Duration,
    make: F,
    background: Vec<B>,
    sim_counters: impl Fn() -> Counters,
) -> FleetReport
where
    C: Container,
    B: Container,
    F: Fn(usize) -> C,
{
    let n = n.max(1);
    let containers: Vec<Arc<Mutex<C>>> = (0..n).map(|i| Arc::new(Mutex::new(make(i)))).collect();
    let background: Vec<Arc<Mutex<B>>> = background
        .into_iter()
        .map(|b| Arc::new(Mutex::new(b)))
        .collect();
    let before = sim_counters();
    let start = clock.now_ms();
    let first = traffic.events.first().map(|e| e.at_ms).unwrap_or(start);
    // Traffic times are absolute; play them relative to the clock's start.
    let shift = start - first;
    let end = traffic
        .events
        .last()
        .map(|e| e.at_ms + shift)
        .unwrap_or(start);
    let mut report = FleetReport {
        containers: n,
        ..FleetReport::default()
    };
    let mut next = 0usize;
    let mut now = start;
    while now <= end {
        let mut batches: Vec<Vec<Event>> = vec![Vec::new(); n];
        while next < traffic.events.len() && traffic.events[next].at_ms + shift <= now {
            let e = &traffic.events[next];
            batches[slot_of(e, n)].push(e.clone());
            next += 1;
        }
        for b in &background {
            b.lock().await.tick(now).await;
        }
        let mut tasks = Vec::with_capacity(n);
        for (c, batch) in containers.iter().zip(batches) {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = c.lock().await;
                c.tick(now).await;
                let mut results = Vec::with_capacity(batch.len());
                for e in &batch {
                    results.push(c.handle(e, now).await);
                }
                results
            }));
        }
        for t in tasks {
            for h in t.await.unwrap_or_default() {
                report.events += 1;
                report.events_failed += u64::from(!h.ok);
                report.client_unauthorized += u64::from(h.unauthorized);
                report.client_rate_limited += u64::from(h.rate_limited);
                report.retries += u64::from(h.retries);
            }
        }
        clock.advance(step);
        now = clock.now_ms();
    }
    let after = sim_counters();
    report.simulated_minutes = (now - start) as f64 / 60_000.0;
    report.token_requests = after.token_requests - before.token_requests;
    report.unauthorized = after.unauthorized_total - before.unauthorized_total;
    report.rate_limited = (after.api_rate_limited + after.injected_429)
        - (before.api_rate_limited + before.injected_429);
    report
}

/// Both kinds of container enrich ended sessions, the one event that needs the API.
fn needs_api(e: &Event) -> bool {
    e.detail_type.ends_with(".flow.end")
}

fn slot_of(e: &Event, n: usize) -> usize {
    let id = e.envelope["id"].as_str().unwrap_or_default();
    // FNV-1a: stable across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % n as u64) as usize
}

/// The naive integration: its own token per container, re-fetched every
/// `refresh_every` whether it needs it or not, one retry after a 401 with a
/// freshly fetched token, no coordination.
pub struct NaiveContainer {
    http: reqwest::Client,
    base_url: String,
    client_id: String,
    client_secret: String,
    refresh_every_ms: i64,
    token: Option<(String, i64)>,
}

impl NaiveContainer {
    pub fn new(
        base_url: &str,
        client_id: &str,
        client_secret: &str,
        refresh_every: Duration,
    ) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            base_url: base_url.to_string(),
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            refresh_every_ms: refresh_every.as_millis() as i64,
            token: None,
        }
    }

    async fn fetch(&mut self, now_ms: i64) {
        let r = self
            .http
            .post(format!("{}/oauth/token", self.base_url))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await;
        self.token = match r {
            Ok(r) if r.status().is_success() => r
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["access_token"].as_str().map(|t| (t.to_string(), now_ms))),
            _ => None,
        };
    }

    async fn call(&self, conversation_id: &str) -> u16 {
        let Some((token, _)) = &self.token else {
            return 401;
        };
        self.http
            .get(format!(
                "{}/api/v2/conversations/{conversation_id}",
                self.base_url
            ))
            .bearer_auth(token)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }
}

impl Container for NaiveContainer {
    async fn tick(&mut self, now_ms: i64) {
        if let Some((_, fetched)) = self.token
            && now_ms - fetched >= self.refresh_every_ms
        {
            self.fetch(now_ms).await;
        }
    }

    async fn handle(&mut self, event: &Event, now_ms: i64) -> Handled {
        if self.token.is_none() {
            self.fetch(now_ms).await;
        }
        if !needs_api(event) {
            return Handled {
                ok: true,
                ..Handled::default()
            };
        }
        let mut h = Handled::default();
        let mut status = self.call(&event.conversation_id).await;
        if status == 401 {
            h.unauthorized += 1;
            h.retries += 1;
            self.fetch(now_ms).await;
            status = self.call(&event.conversation_id).await;
            h.unauthorized += u32::from(status == 401);
        }
        h.rate_limited += u32::from(status == 429);
        h.ok = (200..300).contains(&status);
        h
    }
}

/// A product container: the shared broker's token, slot chosen per conversation.
pub struct BrokerContainer<S> {
    broker: Arc<token_broker::TokenBroker<S>>,
    api: genesys::GenesysClient,
}

impl<S: token_broker::TokenSource> BrokerContainer<S> {
    pub fn new(
        broker: Arc<token_broker::TokenBroker<S>>,
        api: genesys::GenesysClient,
    ) -> Self {
        Self { broker, api }
    }
}

impl<S: token_broker::TokenSource> Container for BrokerContainer<S> {
    async fn tick(&mut self, _now_ms: i64) {}

    async fn handle(&mut self, event: &Event, _now_ms: i64) -> Handled {
        use token_broker::{CallError, slot_for};
        use genesys::ApiError;
        if !needs_api(event) {
            return Handled {
                ok: true,
                ..Handled::default()
            };
        }
        let slot = slot_for(&event.conversation_id, self.broker.config().pool_size);
        let path = format!("/api/v2/conversations/{}", event.conversation_id);
        let r = self
            .broker
            .call(slot, |t| {
                let (api, path) = (self.api.clone(), path.clone());
                async move { api.get_json(&t, &path).await }
            })
            .await;
        match r {
            Ok((_, retried)) => Handled {
                ok: true,
                unauthorized: u32::from(retried),
                retries: u32::from(retried),
                ..Handled::default()
            },
            Err(CallError::Call(ApiError::RateLimited { .. })) => Handled {
                rate_limited: 1,
                ..Handled::default()
            },
            Err(CallError::Call(ApiError::Unauthorized { .. })) => Handled {
                unauthorized: 2,
                retries: 1,
                ..Handled::default()
            },
            Err(_) => Handled::default(),
        }
    }
}

/// The scheduled token refresher, ticking every `every` of simulated time.
pub struct RefresherContainer<S> {
    broker: Arc<token_broker::TokenBroker<S>>,
    every_ms: i64,
    last: Option<i64>,
}

impl<S: token_broker::TokenSource> RefresherContainer<S> {
    pub fn new(broker: Arc<token_broker::TokenBroker<S>>, every: Duration) -> Self {
        Self {
            broker,
            every_ms: every.as_millis() as i64,
            last: None,
        }
    }
}

impl<S: token_broker::TokenSource> Container for RefresherContainer<S> {
    async fn tick(&mut self, now_ms: i64) {
        if self.last.is_none_or(|l| now_ms - l >= self.every_ms) {
            self.last = Some(now_ms);
            self.broker.tick().await;
        }
    }

    async fn handle(&mut self, _event: &Event, _now_ms: i64) -> Handled {
        Handled::default()
    }
}

/// Replays `traffic` through `containers` product containers (one broker
/// each, as in Lambda) and a refresher ticking every `refresher_every`,
/// against `sim` and the DynamoDB table and secret in `res`.
pub async fn product_fleet(
    sim: &crate::sim::Simulator,
    res: &crate::aws::TestResources,
    traffic: &Traffic,
    containers: usize,
    broker: token_broker::BrokerConfig,
    refresher_every: Duration,
) -> FleetReport {
    let clock = sim.clock();
    let api = crate::product::api(sim);
    let make_broker = || Arc::new(crate::product::broker(res, sim, broker.clone()));
    let refresher = RefresherContainer::new(make_broker(), refresher_every);
    drive(
        &clock,
        traffic,
        containers,
        Duration::from_secs(1),
        |_| BrokerContainer::new(make_broker(), api.clone()),
        vec![refresher],
        || sim.counters(),
    )
    .await
}

/// Replays `traffic` through `containers` naive containers against `sim`
/// (the default client, a 5-minute re-fetch timer).
pub async fn naive_fleet(
    sim: &crate::sim::Simulator,
    traffic: &Traffic,
    containers: usize,
) -> FleetReport {
    let base = sim.base_url();
    drive(
        &sim.clock(),
        traffic,
        containers,
        Duration::from_secs(1),
        |_| {
            NaiveContainer::new(
                &base,
                crate::sim::DEFAULT_CLIENT_ID,
                crate::sim::DEFAULT_CLIENT_SECRET,
                Duration::from_secs(300),
            )
        },
        Vec::<NaiveContainer>::new(),
        || sim.counters(),
    )
    .await
}
