//! The simulator against the official Genesys Cloud Python SDK
//! (`PureCloudPlatformClientV2` 269.0.0): every response the product relies
//! on must deserialize into, and match exactly, the SDK's models. The negative
//! case proves the check catches the old simulator's invented `intents` field.

use std::sync::Arc;

use serde_json::json;
use testkit::genesys_sdk::{ConformanceRun, run_conformance};
use testkit::sim::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Policies, SimClock, SimConfig, Simulator, iso,
};
use testkit::traffic::{self, TrafficConfig};

/// The web-messaging bot flow of the default traffic.
const FLOW: &str = "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c";
const LAG_S: u64 = 45;

async fn run(policies: Policies) -> ConformanceRun {
    let throttles_logins = policies.token_rate_limit_per_min.is_some();
    let t = traffic::generate(&TrafficConfig {
        seed: 7,
        sessions_per_minute: 20,
        minutes: 3,
        ..TrafficConfig::default()
    });
    let sessions: Vec<_> = t
        .conversations
        .iter()
        .filter_map(|c| c.detail.bot.as_ref())
        .filter(|b| b.flow_id == FLOW)
        .collect();
    assert!(sessions.len() >= 5, "traffic has sessions of {FLOW}");
    let first_done = sessions
        .iter()
        .map(|b| b.date_completed_ms)
        .min()
        .unwrap_or(0);
    let last_done = sessions
        .iter()
        .map(|b| b.date_completed_ms)
        .max()
        .unwrap_or(0);
    let sim = Simulator::start(SimConfig {
        policies: Policies {
            analytics_lag_s: LAG_S,
            ..policies
        },
        clock: Arc::new(SimClock::frozen_at(t.events[0].at_ms)),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    sim.register_conversations(t.sim_conversations());
    // Past the last session's end and the ingestion lag: all are listed.
    sim.clock()
        .advance_to(last_done + (LAG_S as i64) * 1000 + 1_000);
    let scenario = json!({
        "base_url": sim.base_url(),
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "bad_client_secret": "not-the-secret",
        "flow_id": FLOW,
        "interval": format!("{}/{}", iso(first_done), iso(last_done + 1)),
        "expect_sessions_min": sessions.len(),
        "page_size": 4,
        "turn_sessions": 3,
        "rate_limit": {"max_calls": 400},
        "token_rate_limit": throttles_logins.then(|| json!({"max_logins": 20})),
    });
    let r = tokio::task::spawn_blocking(move || run_conformance(&scenario))
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("the conformance harness could not run: {e}"));
    drop(sim);
    println!("{}", r.output);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_finds_every_response_conformant() {
    let r = run(Policies {
        // Past the script's other logins, so its last check meets the limit.
        token_rate_limit_per_min: Some(10),
        ..Policies::default()
    })
    .await;
    let fails = r.failures();
    assert!(fails.is_empty(), "FAIL lines:\n{}", fails.join("\n"));
    assert_eq!(r.exit_code, Some(0), "{}", r.output);
    assert!(
        r.output.contains("ok   429 after"),
        "the 429 check ran: {}",
        r.output
    );
    assert!(
        r.output.contains("ok   throttled login after"),
        "the throttled-login check ran: {}",
        r.output
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_catches_the_old_invented_intents_field() {
    let r = run(Policies {
        invented_session_intents: true,
        ..Policies::default()
    })
    .await;
    assert_ne!(r.exit_code, Some(0), "{}", r.output);
    assert!(
        r.failures().iter().any(|f| f.contains("intents")),
        "a FAIL line names `intents`: {}",
        r.output
    );
}
