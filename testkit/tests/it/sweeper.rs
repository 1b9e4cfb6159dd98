//! The enrichment sweeper in AWS for months (issue 23): no single session
//! stops a sweep, the roll-up keeps its share of every sweep, and a bot
//! session with no turns is counted at once.

use std::time::Duration;

use serde_json::json;
use testkit::iam::Role;
use testkit::iam::policy::Policy;
use testkit::product;
use testkit::sim::{FaultSide, Faults, Policies, Simulator};
use testkit::traffic::{self, Traffic, TrafficConfig};
use token_broker::BrokerConfig;
use va_analytics::PendingEnrichment;
use va_enrichment::SweepConfig;

use crate::common::setup;

/// An hour boundary (epoch ms), so a traffic's hours are known.
const HOUR_START: i64 = 1_795_186_800_000;
const HOUR_MS: i64 = 3_600_000;

fn deadline(secs: u64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(secs)
}

/// Traffic from [`HOUR_START`]: `per_minute` conversations a minute for
/// `minutes`.
fn traffic_from_the_hour(seed: u64, per_minute: u32, minutes: u32) -> Traffic {
    traffic::generate(&TrafficConfig {
        seed,
        sessions_per_minute: per_minute,
        minutes,
        start_ms: HOUR_START,
        ..TrafficConfig::default()
    })
}

/// A simulator at [`HOUR_START`] that knows `t`'s conversations, fresh
/// resources, and `t`'s events counted: the sessions left pending.
async fn counted(
    t: &Traffic,
) -> (
    Simulator,
    testkit::aws::TestResources,
    Vec<PendingEnrichment>,
) {
    let (sim, res) = setup(Policies::default(), HOUR_START).await;
    sim.register_conversations(t.sim_conversations());
    let pending = handle_all(&res, &sim, t).await;
    (sim, res, pending)
}

/// `t`'s events counted by one handler, each at its time; the sessions
/// left pending.
async fn handle_all(
    res: &testkit::aws::TestResources,
    sim: &Simulator,
    t: &Traffic,
) -> Vec<PendingEnrichment> {
    let handler = product::handler(res, sim);
    for e in &t.events {
        sim.clock().advance_to(e.at_ms);
        handler
            .handle(&e.envelope, deadline(30))
            .await
            .expect("counted");
    }
    product::store(res)
        .pending(i64::MAX, 10_000)
        .await
        .expect("pending")
}

fn sweeper(res: &testkit::aws::TestResources, sim: &Simulator) -> product::ProductSweeper {
    product::sweeper(
        res,
        sim,
        BrokerConfig::default(),
        SweepConfig {
            delay: Duration::ZERO,
            ..SweepConfig::default()
        },
    )
}

/// One sweep ten minutes after [`HOUR_START`]: the traffic's sessions
/// are all ready.
async fn sweep_ten_minutes_in(
    res: &testkit::aws::TestResources,
    sim: &Simulator,
) -> va_enrichment::SweepReport {
    sim.clock().advance_to(HOUR_START + 10 * 60_000);
    sweeper(res, sim)
        .sweep(deadline(60))
        .await
        .expect("a sweep")
}

/// Denies the sweeper's role writing one session's marker: its enrichment
/// transaction is refused every time (an explicit deny, as an SCP or a
/// permissions boundary would give).
fn deny_marker_of(res: &testkit::aws::TestResources, p: &PendingEnrichment) {
    let stack = res.stack.as_ref().expect("the double");
    let mut policies = stack.role(Role::EnrichmentSweeper).expect("role").policies;
    let marker = format!("event#enriched#{}#{}", p.conversation_id, p.session_key);
    let deny = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Action": "dynamodb:PutItem",
        "Resource": testkit::iam::request::table_arn(&res.analytics_table),
        "Condition": {"ForAnyValue:StringEquals": {"dynamodb:LeadingKeys": [marker]}}}]});
    policies.push(Policy::parse(&deny).expect("policy"));
    stack.set_policies(Role::EnrichmentSweeper, policies);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_write_always_fails_never_holds_back_the_others_or_the_roll_up() {
    let t = traffic_from_the_hour(23, 20, 4);
    let (sim, res, pending) = counted(&t).await;
    assert!(pending.len() > 50, "{} bot sessions", pending.len());
    // The oldest session, which every sweep meets first.
    let stuck = pending.iter().min_by_key(|p| p.end_ms).expect("one");
    deny_marker_of(&res, stuck);
    let stuck_key = format!("{}#{}", stuck.conversation_id, stuck.session_key);
    // Three hours later: the traffic's hour is sealed.
    sim.clock().advance_to(HOUR_START + 3 * HOUR_MS + 60_000);
    let sweeper = sweeper(&res, &sim);
    let first = sweeper.sweep(deadline(60)).await.expect("a sweep");
    assert_eq!(first.enriched, pending.len() - 1, "{first:?}");
    assert_eq!(first.item_failures.len(), 1, "{first:?}");
    assert!(first.item_failures[0].starts_with(&stuck_key), "{first:?}");
    assert!(first.item_failures[0].contains("AccessDenied"), "{first:?}");
    assert!(!first.roll_up_failed && first.hours_rolled > 0, "{first:?}");
    assert!(first.oldest_pending_s >= 3 * 3_600, "{first:?}");
    let second = sweeper.sweep(deadline(60)).await.expect("a sweep");
    assert_eq!((second.pending, second.enriched), (1, 0), "{second:?}");
    assert_eq!(second.item_failures.len(), 1, "{second:?}");
    assert!(!second.roll_up_failed, "{second:?}");
    let left = product::store(&res)
        .pending(i64::MAX, 10)
        .await
        .expect("pending");
    assert_eq!(left.len(), 1, "the failing session stays pending");
    let denials = res.denials();
    assert!(
        !denials.is_empty()
            && denials
                .iter()
                .all(|d| d.caller.contains("EnrichmentSweeper")),
        "only the denied writes: {denials:?}"
    );
    res.delete().await.expect("cleanup");
}

/// DynamoDB throttling a hot item (a minute's cell written by many sessions
/// in the same second) is waited out inside the sweep: every session is
/// enriched, none counted as an item failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_writes_are_retried_with_backoff_and_every_session_is_enriched() {
    let t = traffic_from_the_hour(23, 20, 4);
    let (sim, res, pending) = counted(&t).await;
    // One transactional write per item and second (2 units each).
    testkit::aws::set_double(
        &res.dynamodb,
        &res.analytics_table,
        testkit::aws::DoubleSwitches {
            item_wcu_per_s: 2,
            ..testkit::aws::DoubleSwitches::default()
        },
    )
    .await
    .expect("switches");
    let report = sweep_ten_minutes_in(&res, &sim).await;
    assert_eq!(report.enriched, pending.len(), "{report:?}");
    assert!(report.item_failures.is_empty(), "{report:?}");
    assert!(report.write_retries > 0, "the double throttled: {report:?}");
    res.delete().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_larger_than_a_sweep_still_rolls_up_every_sealed_hour() {
    let t = traffic_from_the_hour(24, 1, 50);
    let (sim, res, pending) = counted(&t).await;
    // Sessions minutes apart: a lookup pair per session, a second each,
    // about 90 s of lookups for a 24 s sweep.
    sim.set_faults(
        FaultSide::Api,
        Faults {
            latency_ms: 1_000,
            ..Faults::default()
        },
    );
    // Four hours later: the traffic's hour and the two after it are sealed.
    sim.clock().advance_to(HOUR_START + 4 * HOUR_MS + 60_000);
    let report = sweeper(&res, &sim)
        .sweep(deadline(24))
        .await
        .expect("a sweep");
    assert!(
        report.left > pending.len() / 2,
        "the backlog is larger than the sweep: {report:?}"
    );
    assert!(!report.roll_up_failed, "{report:?}");
    // Back to the traffic's hour, and up to the last sealed one.
    assert!(report.hours_rolled >= 3, "{report:?}");
    assert_eq!(
        report.rolled_to,
        Some(HOUR_START + 2 * HOUR_MS),
        "{report:?}"
    );
    res.delete().await.expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_session_without_turns_gets_its_result_and_intent_none_in_the_first_sweep() {
    let mut t = traffic_from_the_hour(25, 6, 5);
    let (sim, res) = setup(Policies::default(), HOUR_START).await;
    let mut conversations = t.sim_conversations();
    // A session that handed back to a queue: its bot result is what counts
    // its escalation, so a lost result would show.
    let quiet = conversations
        .iter_mut()
        .find(|c| {
            c.bot
                .as_ref()
                .is_some_and(|b| va_analytics::kpi::is_transfer_result(&b.bot_result))
        })
        .expect("a bot session that transferred");
    let was = quiet
        .bot
        .as_ref()
        .and_then(|b| b.final_intent().map(str::to_string));
    if let Some(bot) = quiet.bot.as_mut() {
        bot.turns.clear();
    }
    let (flow_id, minute) = (
        quiet.flow_id.clone(),
        va_analytics::minute_of(quiet.flow_end_ms),
    );
    sim.register_conversations(conversations);
    // The truth without its turns: intent `none` instead of the last turn's.
    let none = va_analytics::kpi::NO_TURNS_INTENT.to_string();
    let flow_minutes = t.truth.by_flow_minute.entry(flow_id).or_default();
    for kpis in [
        t.truth.by_minute.entry(minute).or_default(),
        flow_minutes.entry(minute).or_default(),
    ] {
        if let Some(was) = &was
            && let Some(n) = kpis.intents.get_mut(was)
        {
            *n -= 1;
            if *n == 0 {
                kpis.intents.remove(was);
            }
        }
        *kpis.intents.entry(none.clone()).or_default() += 1;
    }
    let pending = handle_all(&res, &sim, &t).await;
    let report = sweep_ten_minutes_in(&res, &sim).await;
    assert_eq!(report.enriched, pending.len(), "{report:?}");
    let diffs =
        testkit::replay::compare(&product::store(&res), &t.truth, 0, HOUR_START + HOUR_MS).await;
    assert!(diffs.is_empty(), "{diffs:#?}");
    res.delete().await.expect("cleanup");
}

/// One sweep at a time without reserved concurrency: the lease item, under
/// the sweeper's own role.
#[tokio::test]
async fn one_sweep_at_a_time_holds_the_lease_and_an_expired_one_is_taken_over() {
    let res = testkit::aws::TestResources::create(
        testkit::sim::DEFAULT_CLIENT_ID,
        testkit::sim::DEFAULT_CLIENT_SECRET,
    )
    .await
    .expect("moto");
    let role = res.as_role(Role::EnrichmentSweeper);
    let lease = va_analytics::SweepLease::new(role.dynamodb.clone(), res.analytics_table.clone());
    let now = HOUR_START;
    assert!(lease.acquire("a", now, now + 120_000).await.expect("put"));
    let second = lease.run("b", now + 1_000, now + 121_000, async { "swept" });
    assert_eq!(second.await.expect("put"), None, "a runs");
    lease.release("a").await.expect("delete");
    let third = lease.run("b", now + 2_000, now + 122_000, async { "swept" });
    assert_eq!(third.await.expect("put"), Some("swept"));
    // A holder that never gave it back (a crash) holds it until its end.
    assert!(lease.acquire("c", now, now + 120_000).await.expect("put"));
    assert!(
        !lease
            .acquire("d", now + 119_999, now + 240_000)
            .await
            .expect("put")
    );
    assert!(
        lease
            .acquire("d", now + 120_001, now + 240_000)
            .await
            .expect("put")
    );
    lease
        .release("c")
        .await
        .expect("not c's any more: nothing to do");
    assert!(
        !lease
            .acquire("e", now + 121_000, now + 240_000)
            .await
            .expect("put")
    );
    assert!(res.denials().is_empty(), "{:?}", res.denials());
    res.delete().await.expect("cleanup");
}
