//! Benchmark: the product's token broker against the naive fleet on the same
//! traffic, and the warm in-memory token read.
//!
//! `cargo run --release -p testkit --example fleet_bench` (defaults: 50
//! containers, 60 sessions/min, a simulated 60 minutes, 3600 s tokens, the
//! live-token cap at 10). Loopback only: moto and the simulator run here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use testkit::fleet::{self, FleetReport};
use testkit::sim::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Policies, SimClock, SimConfig, Simulator,
};
use testkit::traffic::{self, TrafficConfig};
use token_broker::BrokerConfig;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 50)]
    containers: usize,
    #[arg(long, default_value_t = 60)]
    sessions_per_minute: u32,
    #[arg(long, default_value_t = 60)]
    minutes: u32,
    #[arg(long, default_value_t = 3_600)]
    token_lifetime: u64,
    /// Live tokens per client (the simulator's assumption); 0 turns it off.
    #[arg(long, default_value_t = 10)]
    token_cap: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    #[arg(long, default_value_t = 1_000_000)]
    reads: u32,
}

async fn simulator(args: &Args, start_ms: i64) -> Simulator {
    Simulator::start(SimConfig {
        policies: Policies {
            token_lifetime_s: args.token_lifetime,
            live_token_cap: (args.token_cap > 0).then_some(args.token_cap),
            ..Policies::default()
        },
        clock: Arc::new(SimClock::frozen_at(start_ms)),
        ..SimConfig::default()
    })
    .await
    .expect("simulator")
}

fn row(name: &str, r: &FleetReport, secs: f64) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {} | {} | {:.1} |",
        r.events,
        r.token_requests,
        r.unauthorized,
        r.rate_limited,
        r.retries,
        r.events_failed,
        secs
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = Args::parse();
    let t = traffic::generate(&TrafficConfig {
        seed: args.seed,
        sessions_per_minute: args.sessions_per_minute,
        minutes: args.minutes,
        ..TrafficConfig::default()
    });
    let start = t.events[0].at_ms;
    println!(
        "{} containers, {} sessions/min, {} simulated minutes, {} s tokens, live-token cap {}",
        args.containers,
        args.sessions_per_minute,
        args.minutes,
        args.token_lifetime,
        args.token_cap
    );

    let naive_sim = simulator(&args, start).await;
    naive_sim.register_conversations(t.sim_conversations());
    let clock = Instant::now();
    let naive = fleet::naive_fleet(&naive_sim, &t, args.containers).await;
    let naive_secs = clock.elapsed().as_secs_f64();

    let sim = simulator(&args, start).await;
    sim.register_conversations(t.sim_conversations());
    let res = testkit::aws::TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let clock = Instant::now();
    let product = fleet::product_fleet(
        &sim,
        &res,
        &t,
        args.containers,
        BrokerConfig::default(),
        Duration::from_secs(60),
    )
    .await;
    let product_secs = clock.elapsed().as_secs_f64();

    println!();
    println!(
        "| fleet | events | token requests | 401s | 429s | retries | failed events | wall s |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "{}",
        row("naive (own token, 5 min timer)", &naive, naive_secs)
    );
    println!(
        "{}",
        row("product (broker, pool 1)", &product, product_secs)
    );

    // Warm in-memory read: the token is cached, no I/O.
    let store = token_broker::TokenStore::new(
        res.dynamodb.clone(),
        res.token_table.clone(),
        &res.secret_id,
    );
    let creds = token_broker::SecretsManagerCredentials::new(
        res.secrets.clone(),
        res.secret_id.clone(),
        Duration::from_secs(300),
    );
    let api = genesys::GenesysClient::new(
        genesys::Hosts::single(&sim.base_url()),
        genesys::RetryPolicy::default(),
    )
    .expect("client");
    let broker = token_broker::TokenBroker::new(
        store,
        Arc::new(token_broker::GenesysTokenSource::new(api, creds)),
        sim.clock(),
        BrokerConfig::default(),
    );
    broker.token(0).await.expect("warm");
    let n = args.reads;
    let began = Instant::now();
    let mut hits = 0u32;
    for _ in 0..n {
        hits += u32::from(std::hint::black_box(broker.cached(0)).is_some());
    }
    let sync_ns = began.elapsed().as_nanos() as f64 / f64::from(n);
    let began = Instant::now();
    for _ in 0..n {
        std::hint::black_box(broker.token(0).await.expect("cached"));
    }
    let async_ns = began.elapsed().as_nanos() as f64 / f64::from(n);
    assert_eq!(hits, n);
    println!();
    println!(
        "warm token read: cached() {sync_ns:.0} ns/op, token().await {async_ns:.0} ns/op ({n} reads)"
    );
    let _ = res.delete().await;
}
