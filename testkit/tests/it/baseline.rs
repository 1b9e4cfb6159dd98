//! The baseline the product must beat: a naive fleet where every container
//! fetches its own token and re-fetches it on a fixed timer, on the same
//! driver, traffic and handler code as the product.

use std::sync::Arc;

use testkit::stack::{self, FaultPlan, Mode, StackOptions, StackReport};

fn options(token_lifetime_s: u64, token_cap: Option<usize>) -> StackOptions {
    StackOptions {
        containers: 50,
        sessions_per_minute: 60,
        minutes: 20,
        seed: 7,
        token_lifetime_s,
        // The naive containers look every session up as its flow.end
        // arrives: with an ingestion lag they fail those lookups (the local
        // stack's comparison shows that); here they are judged on tokens.
        analytics_lag_s: 0,
        faults: FaultPlan {
            token_cap,
            ..FaultPlan::default()
        },
        ..StackOptions::default()
    }
}

/// One mode on fresh resources; `check` sees the run before they are deleted.
async fn run(opts: &StackOptions, mode: Mode, check: impl FnOnce(&stack::Running)) -> StackReport {
    let running = stack::start(opts, stack::generate(opts))
        .await
        .expect("stack");
    let report = stack::run_mode(&running, opts, mode, Arc::new(|_, _| {})).await;
    println!(
        "{} fleet {}",
        mode.name(),
        serde_json::to_string(&report).unwrap_or_default()
    );
    check(&running);
    running.res.delete().await.expect("cleanup");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_fleet_under_the_live_token_cap_sees_401s() {
    let capped = run(&options(3_600, Some(10)), Mode::Naive, |_| {}).await;
    assert!(capped.events > 5_000, "{capped:?}");
    // 50 containers, each fetching when it first needs a token and again when
    // its copy is 5 minutes old: at least one per container per 5 minutes.
    assert!(capped.token_requests >= 200, "{capped:?}");
    assert!(
        capped.unauthorized > 0,
        "the cap must cost the naive fleet 401s: {capped:?}"
    );
    assert!(
        capped.retries > 0,
        "every 401 cost the naive fleet a retry: {capped:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_fleet_without_the_cap_still_spends_a_token_request_per_container_per_timer() {
    let report = run(&options(3_600, None), Mode::Naive, |_| {}).await;
    assert!(report.token_requests >= 200, "{report:?}");
    assert_eq!(report.unauthorized, 0, "{report:?}");
    assert_eq!(report.dead_lettered, 0, "{report:?}");
    assert!(report.exactly_once, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_product_fleet_under_the_same_cap_makes_two_token_requests_and_no_401s() {
    crate::common::capture_logs();
    // Tokens short enough that the run (20 minutes of traffic, then the
    // conversations' and the sweeper's tail) includes one scheduled refresh
    // at minute 20 (a 600 s margin), and not a second at minute 40.
    let report = run(&options(1_800, Some(10)), Mode::Broker, |r| {
        crate::common::assert_logs_clean(&r.sim, &[])
    })
    .await;
    assert!(report.events > 5_000, "{report:?}");
    assert_eq!(
        report.token_requests, 2,
        "one at start, one scheduled refresh: {report:?}"
    );
    assert_eq!(report.unauthorized, 0, "{report:?}");
    assert_eq!(report.rate_limited, 0, "{report:?}");
    assert_eq!(report.dead_lettered, 0, "{report:?}");
    assert!(report.exactly_once, "{report:?}");
}
