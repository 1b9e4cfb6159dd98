//! conversation-events: fixtures, exactly-once replay against moto and the
//! simulator, faults mid-run, and malformed input.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use testkit::product;
use testkit::replay::{self, DriveOptions, DriveReport, FaultPlan, Fleet, Repeats};
use testkit::sim::{FaultSide, Faults, Policies, Simulator};
use testkit::traffic::{self, TrafficConfig};
use token_broker::BrokerConfig;
use va_analytics::{Applied, Scope, attr};
use va_enrichment::SweepConfig;
use va_handler::HandleError;

use crate::common::{assert_logs_clean, setup};

fn fixtures() -> Vec<(String, Value)> {
    testkit::fixtures::all()
}

fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(15)
}

#[tokio::test]
async fn every_fixture_is_handled_and_a_second_delivery_is_a_duplicate() {
    // The handler's clock where the fixtures happen: events from the future
    // (or older than the markers remember) are rejected.
    let (sim, res) = setup(Policies::default(), 1_795_187_012_345).await;
    let handler = product::handler(&res, &sim);
    let kpi = va_analytics::KpiConfig::default();
    let (mut unknown, mut counted) = (0, 0);
    for (name, fixture) in fixtures() {
        let h = handler
            .handle(&fixture, deadline())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(h.applied, Applied::Processed, "{name}");
        unknown += usize::from(h.unknown_topic);
        let again = handler.handle(&fixture, deadline()).await.expect("again");
        // An event that changes a KPI is found again by its marker; one
        // that changes nothing is acknowledged again, still changing nothing
        // (the totals below prove it).
        let noop = va_events::parse(&fixture)
            .map(|e| va_analytics::kpi::plan(&e, &kpi, None).is_noop())
            .unwrap_or(false);
        if noop {
            assert_eq!(again.applied, Applied::Processed, "{name}");
        } else {
            counted += 1;
            assert_eq!(again.applied, Applied::Duplicate, "{name}");
        }
    }
    assert!(counted >= 4, "the fixtures that change KPIs: {counted}");
    // The presence event and the scheduler's tick are not conversation topics.
    assert_eq!(unknown, 2);
    let org = product::store(&res)
        .query(&Scope::Org, 0, i64::MAX / 2)
        .await
        .expect("query");
    let total = |name: &str| {
        org.iter()
            .map(|b| b.counters.get(name).copied().unwrap_or(0))
            .sum::<i64>()
    };
    assert_eq!(
        total(attr::EVENTS),
        0,
        "event counts are metrics, not stored"
    );
    assert_eq!(total(attr::STARTED), 1);
    assert_eq!(total(attr::ENDED), 2, "two flow.end fixtures");
    assert_eq!(total(attr::CONTAINED), 1);
    assert_eq!(total(attr::ESCALATED), 1);
    assert_eq!(total("o#e5f6a7b8-2222-4333-8444-555566667777#success"), 1);
    assert_eq!(total(attr::DURATION_MS_SUM), 62_238 + 82_238);
    res.delete().await.expect("cleanup");
}

#[tokio::test]
async fn a_malformed_event_is_rejected_naming_the_event_and_the_field_and_counts_nothing() {
    let (sim, res) = setup(Policies::default(), 1_763_650_000_000).await;
    let handler = product::handler(&res, &sim);
    let (_, mut fixture) = fixtures()
        .into_iter()
        .find(|(n, _)| n == "flow-end-contained.json")
        .expect("fixture");
    fixture["detail"]["eventBody"]["eventTime"] = Value::String("+1 555 0100 (not a time)".into());
    let err = handler
        .handle(&fixture, deadline())
        .await
        .expect_err("rejected");
    let HandleError::Rejected(r) = &err else {
        panic!("{err}")
    };
    assert_eq!(r.event_id, "0b6f0a9e-0002-4c1a-9e55-000000000002");
    assert_eq!(r.field, "detail.eventBody.eventTime");
    assert!(
        !err.to_string().contains("555 0100"),
        "the value is not echoed: {err}"
    );
    fixture["detail"]["eventBody"]
        .as_object_mut()
        .expect("object")
        .remove("eventTime");
    let err = handler
        .handle(&fixture, deadline())
        .await
        .expect_err("rejected");
    assert!(
        err.to_string()
            .contains("detail.eventBody.eventTime` is missing"),
        "{err}"
    );
    let org = product::store(&res)
        .query(&Scope::Org, 0, i64::MAX / 2)
        .await
        .expect("query");
    assert!(org.is_empty(), "a rejected event changes nothing: {org:?}");
    res.delete().await.expect("cleanup");
}

/// The store equals the ground truth and nothing was dead-lettered.
fn assert_exact(r: &Replay) {
    assert!(
        r.diffs.is_empty(),
        "{} differences, first: {:#?}",
        r.diffs.len(),
        &r.diffs[..r.diffs.len().min(5)]
    );
    assert_eq!(r.report.dead_lettered, 0, "{:?}", r.report.errors);
}

struct Replay {
    report: DriveReport,
    diffs: Vec<String>,
    sim: Simulator,
}

async fn run_replay(faults: bool) -> Replay {
    run_replay_with(faults, Load::default()).await
}

/// How the fleet takes the traffic.
#[derive(Clone, Copy)]
struct Load {
    minutes: u32,
    containers: usize,
    /// The SQS path with batches of this many.
    batch: Option<usize>,
    /// The double's transaction hold.
    hold_ms: u64,
    /// Simulated seconds per step: a longer one keeps every container busy.
    step_s: u64,
}

impl Default for Load {
    fn default() -> Self {
        Self {
            minutes: 20,
            containers: 8,
            batch: None,
            hold_ms: 0,
            step_s: 1,
        }
    }
}

async fn run_replay_with(faults: bool, load: Load) -> Replay {
    let t = traffic::generate(&TrafficConfig {
        seed: 11,
        sessions_per_minute: 60,
        minutes: load.minutes,
        ..TrafficConfig::default()
    });
    assert!(t.truth.bot_sessions >= 40 * u64::from(load.minutes));
    let start = t.events[0].at_ms;
    // The analytics API shows a session 10 minutes after it ended (1 minute
    // in the fault run): the sweeper keeps looking until it does.
    let policies = Policies {
        analytics_lag_s: if faults { 60 } else { 600 },
        ..Policies::default()
    };
    let (sim, res) = setup(policies, start).await;
    testkit::aws::set_double(
        &res.dynamodb,
        &res.analytics_table,
        testkit::aws::DoubleSwitches {
            tx_hold_ms: load.hold_ms,
            ..Default::default()
        },
    )
    .await
    .expect("switches");
    sim.register_conversations(t.sim_conversations());
    let fleet = Fleet {
        containers: (0..load.containers)
            .map(|_| Arc::new(product::handler(&res, &sim)))
            .collect(),
        refresher: None,
        sweeper: Some(Arc::new(product::sweeper(
            &res,
            &sim,
            BrokerConfig::default(),
            SweepConfig::default(),
        ))),
    };
    let repeats = Repeats {
        duplicates: 0.10,
        resends: 0.05,
    };
    let deliveries = replay::deliveries(&t, repeats, 5);
    assert!(deliveries.len() > t.events.len());
    // Revocations every 7 minutes; 429 storms every 10.
    let opts = DriveOptions {
        max_attempts: 5,
        faults: FaultPlan {
            revoke_every_min: faults.then_some(7),
            api_429_storm: faults.then_some(40),
            ..FaultPlan::default()
        },
        batch_size: load.batch,
        step: Duration::from_secs(load.step_s),
        ..DriveOptions::default()
    };
    let report = replay::drive(&sim, &fleet, deliveries, &opts, Arc::new(|_, _| {})).await;
    let store = product::store(&res);
    let end = t.events.last().map(|e| e.at_ms).unwrap_or(start) + 3_600_000;
    let diffs = replay::compare(&store, &t.truth, 0, end).await;
    res.delete().await.expect("cleanup");
    Replay { report, diffs, sim }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replaying_with_duplicates_and_shuffles_matches_the_ground_truth_exactly() {
    let r = run_replay(false).await;
    println!(
        "replay: dead-lettered {} redeliveries {} errors {:?}",
        r.report.dead_lettered, r.report.redeliveries, r.report.errors
    );
    assert_exact(&r);
    assert_eq!(
        r.report.duplicates + r.report.processed,
        r.report.deliveries
    );
    assert!(r.report.duplicates > 0);
    assert_eq!(
        r.report.token_requests, 1,
        "the whole replay ran on one token"
    );
    assert_logs_clean(&r.sim, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_batch_path_counts_exactly_once_in_a_fraction_of_the_invocations() {
    let r = run_replay_with(
        false,
        Load {
            minutes: 8,
            batch: Some(100),
            step_s: 60,
            ..Load::default()
        },
    )
    .await;
    assert_exact(&r);
    assert!(r.report.duplicates > 0, "duplicates were found in batches");
    assert_eq!(
        r.report.duplicates + r.report.processed,
        r.report.deliveries
    );
    assert!(
        r.report.invocations * 10 < r.report.deliveries,
        "{} invocations for {} deliveries",
        r.report.invocations,
        r.report.deliveries
    );
    assert_logs_clean(&r.sim, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_that_conflict_on_real_dynamodb_terms_are_retried_and_count_once() {
    // 24 containers kept busy, each transaction holding its items 50 ms.
    let r = run_replay_with(
        false,
        Load {
            minutes: 6,
            containers: 24,
            hold_ms: 50,
            step_s: 60,
            ..Load::default()
        },
    )
    .await;
    assert_exact(&r);
    assert!(
        r.report.conflicts > 0,
        "the double made transactions conflict and the handler retried them"
    );
    assert_logs_clean(&r.sim, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocations_and_429_storms_mid_replay_keep_it_exact_with_one_token_request_per_revocation()
{
    let r = run_replay(true).await;
    assert_exact(&r);
    assert!(r.report.revocations >= 2, "{}", r.report.revocations);
    assert!(r.report.waited_out_429 > 0, "the storms were felt");
    assert!(
        r.report.token_requests <= 1 + r.report.revocations,
        "at most one token request per revocation: {} for {} revocations",
        r.report.token_requests,
        r.report.revocations
    );
    assert_logs_clean(&r.sim, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_30_minute_platform_api_outage_dead_letters_nothing_and_intents_complete_afterwards() {
    let t = traffic::generate(&TrafficConfig {
        seed: 21,
        sessions_per_minute: 15,
        minutes: 45,
        ..TrafficConfig::default()
    });
    let start = t.events[0].at_ms;
    let (sim, res) = setup(Policies::default(), start).await;
    sim.register_conversations(t.sim_conversations());
    let fleet = Fleet {
        containers: (0..4)
            .map(|_| Arc::new(product::handler(&res, &sim)))
            .collect(),
        refresher: Some(Arc::new(product::broker(
            &res,
            &sim,
            BrokerConfig::default(),
        ))),
        sweeper: Some(Arc::new(product::sweeper(
            &res,
            &sim,
            BrokerConfig::default(),
            SweepConfig::default(),
        ))),
    };
    let all = replay::deliveries(
        &t,
        Repeats {
            duplicates: 0.05,
            resends: 0.02,
        },
        9,
    );
    // Phase 1: minutes 0 to 35, the Platform API down from minute 5.
    let outage_from = start + 5 * 60_000;
    let outage_to = outage_from + 30 * 60_000;
    let (during, after): (Vec<_>, Vec<_>) = all.into_iter().partition(|d| d.at_ms < outage_to);
    let first = DriveOptions {
        drain: Duration::ZERO,
        ..DriveOptions::default()
    };
    let before: Vec<_> = during
        .iter()
        .filter(|d| d.at_ms < outage_from)
        .cloned()
        .collect();
    let in_outage: Vec<_> = during
        .into_iter()
        .filter(|d| d.at_ms >= outage_from)
        .collect();
    let r0 = replay::drive(&sim, &fleet, before, &first, Arc::new(|_, _| {})).await;
    sim.set_faults(
        FaultSide::Api,
        Faults {
            errors_5xx: u32::MAX,
            ..Faults::default()
        },
    );
    let r1 = replay::drive(&sim, &fleet, in_outage, &first, Arc::new(|_, _| {})).await;
    assert_eq!(r0.dead_lettered + r1.dead_lettered, 0, "{:?}", r1.errors);
    // Base KPIs are current while the API is down: every minute whose events
    // have all been delivered (15 minutes of margin for a conversation's
    // shuffled deliveries) matches the truth, intents aside.
    let store = product::store(&res);
    let diffs = replay::compare_base(&store, &t.truth, start, outage_to - 15 * 60_000).await;
    assert!(diffs.is_empty(), "{:#?}", &diffs[..diffs.len().min(3)]);
    assert_eq!(
        r1.enriched, r0.enriched,
        "nothing is enriched while the API is down"
    );
    // Phase 2: the API is back; the rest of the traffic, then the sweeper's tail.
    sim.set_faults(FaultSide::Api, Faults::default());
    let r2 = replay::drive(
        &sim,
        &fleet,
        after,
        &DriveOptions::default(),
        Arc::new(|_, _| {}),
    )
    .await;
    assert_eq!(r2.dead_lettered, 0, "{:?}", r2.errors);
    assert!(r2.enrichment_complete);
    let end = t.events.last().map(|e| e.at_ms).unwrap_or(start) + 3_600_000;
    let diffs = replay::compare(&store, &t.truth, 0, end).await;
    assert!(
        diffs.is_empty(),
        "{} differences, first: {:#?}",
        diffs.len(),
        &diffs[..diffs.len().min(5)]
    );
    res.delete().await.expect("cleanup");
}

/// Flow names: without `architect:flow:view` the sweeper still enriches
/// every session and stores no name (the dashboard shows ids); once the
/// permission is there, an hour later, the next sweep with sessions of
/// those flows stores their names, as Genesys Cloud has them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_names_wait_for_the_permission_and_never_block_enrichment() {
    let t = testkit::traffic::generate(&testkit::traffic::TrafficConfig {
        minutes: 4,
        sessions_per_minute: 10,
        start_ms: 1_795_187_000_000,
        ..testkit::traffic::TrafficConfig::default()
    });
    let start = t.events[0].at_ms;
    let (sim, res) = crate::common::setup(
        Policies {
            flows_forbidden: true,
            ..Policies::default()
        },
        start,
    )
    .await;
    sim.register_conversations(t.sim_conversations());
    let handler = product::handler(&res, &sim);
    let sweeper = product::sweeper(
        &res,
        &sim,
        BrokerConfig::default(),
        SweepConfig {
            delay: Duration::ZERO,
            ..SweepConfig::default()
        },
    );
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(30);
    // Half the traffic, then a sweep without the permission.
    let half = t.events.len() / 2;
    let cut = t.events[half].at_ms;
    for e in t.events.iter().filter(|e| e.at_ms < cut) {
        handler
            .handle(&e.envelope, deadline())
            .await
            .expect("counted");
    }
    sim.clock().advance_to(cut);
    let first = sweeper.sweep(deadline()).await.expect("sweep");
    assert_eq!(first.names_resolved, 0);
    assert!(
        first.enriched > 0,
        "names never block enrichment: {first:?}"
    );
    let store = product::store(&res);
    assert!(store.flow_names().await.expect("names").0.is_empty());
    // Granted; an hour later the rest of the traffic's sessions come in.
    sim.set_policies(Policies::default());
    let later = t
        .events
        .iter()
        .filter(|e| e.at_ms >= cut)
        .map(|e| e.at_ms)
        .max()
        .unwrap_or(cut)
        + 3_600_000;
    sim.clock().advance_to(later - 3_600_000);
    for e in t.events.iter().filter(|e| e.at_ms >= cut) {
        handler
            .handle(&e.envelope, deadline())
            .await
            .expect("counted");
    }
    sim.clock().advance_to(later);
    let second = sweeper.sweep(deadline()).await.expect("sweep");
    let (names, _) = store.flow_names().await.expect("names");
    let expected: std::collections::BTreeMap<String, String> = t
        .conversations
        .iter()
        .filter(|c| c.is_bot)
        .map(|c| (c.detail.flow_id.clone(), c.detail.flow_name.clone()))
        .collect();
    assert_eq!(second.names_resolved, expected.len(), "{second:?}");
    assert_eq!(names, expected);
    // Known now: another sweep asks nothing more.
    let third = sweeper.sweep(deadline()).await.expect("sweep");
    assert_eq!(third.names_resolved, 0);
    res.delete().await.expect("cleanup");
}
