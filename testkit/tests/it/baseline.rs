//! The baseline the product must beat: a naive fleet where every container
//! fetches its own token and re-fetches it on a fixed timer.

use std::sync::Arc;
use std::time::Duration;

use testkit::fleet::{self, FleetReport};
use testkit::sim::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Policies, SimClock, SimConfig, Simulator,
};
use testkit::traffic::{self, TrafficConfig};

async fn naive_run(policies: Policies) -> FleetReport {
    let t = traffic::generate(&TrafficConfig {
        seed: 7,
        sessions_per_minute: 60,
        minutes: 30,
        ..TrafficConfig::default()
    });
    let sim = Simulator::start(SimConfig {
        policies,
        clock: Arc::new(SimClock::frozen_at(t.events[0].at_ms)),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    sim.register_conversations(t.sim_conversations());
    let report = fleet::naive_fleet(&sim, &t, 50).await;
    println!(
        "naive fleet {}",
        serde_json::to_string(&report).unwrap_or_default()
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_fleet_under_the_live_token_cap_sees_401s() {
    let capped = naive_run(Policies {
        token_lifetime_s: 3600,
        live_token_cap: Some(10),
        ..Policies::default()
    })
    .await;
    assert!(capped.simulated_minutes >= 30.0, "{capped:?}");
    assert!(capped.events > 10_000, "{capped:?}");
    // 50 containers, each fetching at start and every 5 minutes for 30 minutes.
    assert!(capped.token_requests >= 300, "{capped:?}");
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
    let report = naive_run(Policies {
        token_lifetime_s: 3600,
        ..Policies::default()
    })
    .await;
    assert!(report.token_requests >= 300, "{report:?}");
    assert_eq!(report.unauthorized, 0, "{report:?}");
    assert_eq!(report.events_failed, 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_product_fleet_under_the_same_cap_makes_two_token_requests_and_no_401s() {
    crate::common::capture_logs();
    let t = traffic::generate(&TrafficConfig {
        seed: 7,
        sessions_per_minute: 60,
        minutes: 30,
        ..TrafficConfig::default()
    });
    let sim = Simulator::start(SimConfig {
        policies: Policies {
            // Short enough that the 30 minutes include one scheduled refresh.
            token_lifetime_s: 1_800,
            live_token_cap: Some(10),
            ..Policies::default()
        },
        clock: Arc::new(SimClock::frozen_at(t.events[0].at_ms)),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    sim.register_conversations(t.sim_conversations());
    let res = testkit::aws::TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let report = fleet::product_fleet(
        &sim,
        &res,
        &t,
        50,
        token_broker::BrokerConfig::default(),
        Duration::from_secs(60),
    )
    .await;
    println!(
        "product fleet {}",
        serde_json::to_string(&report).unwrap_or_default()
    );
    assert!(report.events > 10_000, "{report:?}");
    assert_eq!(
        report.token_requests, 2,
        "one at start, one scheduled refresh: {report:?}"
    );
    assert_eq!(report.unauthorized, 0, "{report:?}");
    assert_eq!(report.rate_limited, 0, "{report:?}");
    assert_eq!(report.events_failed, 0, "{report:?}");
    crate::common::assert_logs_clean(&sim, &[]);
    res.delete().await.expect("cleanup");
}
