//! Benchmark of conversation-events: CPU per event for parse + plan (no I/O),
//! events per second for one container against moto and the simulator, and
//! DynamoDB round trips per event (counted by an SDK interceptor).
//!
//! `cargo run --release -p testkit --example event_bench`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use testkit::aws::TestResources;
use testkit::sim::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Policies, SimClock, SimConfig, Simulator,
};
use testkit::traffic::{self, TrafficConfig};
use token_broker::BrokerConfig;
use va_analytics::{AnalyticsStore, Applied, KpiConfig, plan};

use va_enrichment::SweepConfig;
use va_handler::EventHandler;

/// Counts every DynamoDB request sent.
#[derive(Debug, Clone, Default)]
struct CountRequests(Arc<AtomicU64>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let t = traffic::generate(&TrafficConfig {
        seed: 3,
        sessions_per_minute: 60,
        minutes: 10,
        ..TrafficConfig::default()
    });
    let envelopes: Vec<serde_json::Value> = t.events.iter().map(|e| e.envelope.clone()).collect();
    let kpi = KpiConfig::default();

    // 1. Parse + plan, no I/O.
    let rounds = 20;
    let began = Instant::now();
    let mut buckets = 0usize;
    for _ in 0..rounds {
        for v in &envelopes {
            let e = va_events::parse(std::hint::black_box(v)).expect("valid");
            buckets += plan(&e, &kpi, None).buckets.len();
        }
    }
    let per_event_us = began.elapsed().as_secs_f64() * 1e6 / (rounds * envelopes.len()) as f64;
    println!(
        "parse + plan: {per_event_us:.2} us/event over {} events ({} bucket updates)",
        rounds * envelopes.len(),
        buckets
    );

    // 2. One container against moto and the simulator, enrichment on.
    let sim = Simulator::start(SimConfig {
        policies: Policies {
            api_rate_limit_per_min: None,
            ..Policies::default()
        },
        clock: Arc::new(SimClock::frozen_at(t.events[0].at_ms)),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    sim.register_conversations(t.sim_conversations());
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let counter = CountRequests::default();
    let counted = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&res.config)
            .interceptor(counter.clone())
            .build(),
    );
    let handler = EventHandler::new(
        AnalyticsStore::new(counted, res.analytics_table.clone()),
        kpi.clone(),
        sim.clock(),
    );
    let began = Instant::now();
    let mut processed = 0u64;
    for v in &envelopes {
        let h = handler
            .handle(v, tokio::time::Instant::now() + Duration::from_secs(10))
            .await
            .expect("handled");
        processed += u64::from(h.applied == Applied::Processed);
    }
    let secs = began.elapsed().as_secs_f64();
    let round_trips = counter.0.load(Ordering::Relaxed);
    println!(
        "one container: {processed} events in {secs:.1} s = {:.0} events/s; DynamoDB round trips per event {:.2}",
        processed as f64 / secs,
        round_trips as f64 / processed as f64
    );

    // 3. The sweeper enriches every ended bot session in batches.
    let sweeper =
        testkit::product::sweeper(&res, &sim, BrokerConfig::default(), SweepConfig::default());
    sim.clock().advance(Duration::from_secs(600));
    let report = sweeper
        .sweep(tokio::time::Instant::now() + Duration::from_secs(60))
        .await
        .expect("sweep");
    println!(
        "sweep: {} sessions enriched with {} Platform API calls = {:.3} calls per ended bot session",
        report.enriched,
        report.api_calls,
        report.api_calls as f64 / report.enriched.max(1) as f64
    );
    let _ = res.delete().await;
}
