//! Benchmark: the product's token broker against the naive fleet on the same
//! traffic, driver and handler code, and the warm in-memory token read.
//!
//! `cargo run --release -p testkit --example fleet_bench` (defaults: 50
//! containers, 60 sessions/min, a simulated 60 minutes, 3600 s tokens, the
//! live-token cap at 10). Loopback only: moto and the simulator run here.

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use testkit::stack::{self, FaultPlan, Mode, StackOptions};
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

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let opts = StackOptions {
        containers: args.containers,
        sessions_per_minute: args.sessions_per_minute,
        minutes: args.minutes,
        seed: args.seed,
        token_lifetime_s: args.token_lifetime,
        duplicate_share: 0.0,
        resend_share: 0.0,
        faults: FaultPlan {
            token_cap: (args.token_cap > 0).then_some(args.token_cap),
            ..FaultPlan::default()
        },
        ..StackOptions::default()
    };
    let traffic = stack::generate(&opts);
    let mut reports = Vec::new();
    for mode in [Mode::Naive, Mode::Broker] {
        let running = stack::start(&opts, traffic.clone()).await.expect("stack");
        let mut r = stack::run_mode(&running, &opts, mode, Arc::new(|_, _| {})).await;
        r.mode = mode.name().to_string();
        reports.push(r);
        if mode == Mode::Broker {
            warm_reads(&running, args.reads).await;
        }
        let _ = running.res.delete().await;
    }
    println!("\n{}", stack::table(&reports));
}

/// Warm in-memory read: the token is cached, no I/O.
async fn warm_reads(running: &stack::Running, n: u32) {
    let broker = testkit::product::broker(&running.res, &running.sim, BrokerConfig::default());
    broker.token(0).await.expect("warm");
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
    println!(
        "warm token read: cached() {sync_ns:.0} ns/op, token().await {async_ns:.0} ns/op ({n} reads)"
    );
}
