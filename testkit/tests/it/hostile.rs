//! Hostile input (issue 12): each event is rejected in milliseconds with a
//! clear reason, nothing is counted, and the invocation succeeds (so Lambda
//! does not retry it) after the event is on the dead-letter queue.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::aws::TestResources;
use testkit::product;
use testkit::sim::Policies;
use va_handler::dead_letter::{Origin, REJECTED};

/// The fixture flow.end's event time; the handler's clock stands there.
const T: i64 = 1_795_187_012_345;

fn flow_end() -> Value {
    testkit::fixtures::named("flow-end-contained.json")
}

/// (name, event, the field its rejection names).
fn hostile() -> Vec<(&'static str, Value, &'static str)> {
    let mut out = Vec::new();
    let mut e = flow_end();
    e["id"] = json!("hostile-time");
    e["detail"]["eventBody"]["eventTime"] = json!(i64::MAX - 1_000);
    e["detail"]["eventBody"]["connectedDurationMs"] = json!(86_400_000);
    out.push((
        "eventTime near i64::MAX with a duration",
        e,
        "detail.eventBody.eventTime",
    ));
    let mut e = flow_end();
    e["id"] = json!("hostile-path");
    e["detail"]["eventBody"]["flowId"] = json!("../../tokens/me?x=");
    out.push(("flowId ../../tokens/me?x=", e, "detail.eventBody.flowId"));
    let mut e = flow_end();
    e["id"] = json!("hostile-long");
    e["detail"]["eventBody"]["conversationId"] = json!("c".repeat(2_048));
    out.push((
        "conversationId of 2,048 bytes",
        e,
        "detail.eventBody.conversationId",
    ));
    let mut e = flow_end();
    e["id"] = json!("hostile-future");
    e["detail"]["eventBody"]["eventTime"] = json!(T + 3_600_000);
    out.push(("eventTime an hour ahead", e, "detail.eventBody.eventTime"));
    let mut e = flow_end();
    e["id"] = json!("hostile-old");
    e["detail"]["eventBody"]["eventTime"] = json!(T - 17 * 86_400_000);
    out.push(("eventTime 17 days old", e, "detail.eventBody.eventTime"));
    let mut e = flow_end();
    e["id"] = json!("x".repeat(300));
    out.push(("EventBridge id of 300 bytes", e, "id"));
    out
}

async fn items(res: &TestResources) -> usize {
    res.dynamodb
        .scan()
        .table_name(&res.analytics_table)
        .send()
        .await
        .expect("scan")
        .items()
        .len()
}

#[tokio::test]
async fn hostile_events_are_rejected_at_once_dead_lettered_with_their_reason_and_never_counted() {
    let (sim, res) = crate::common::setup(Policies::default(), T).await;
    let function = product::function(&res, &sim);
    let cases = hostile();
    println!("| input | answer | time |");
    for (name, event, field) in &cases {
        let t = std::time::Instant::now();
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            function.invoke(event, Duration::from_secs(10)),
        )
        .await
        .unwrap_or_else(|_| panic!("{name}: no answer within 5 s"))
        .unwrap_or_else(|e| panic!("{name}: the invocation failed, so Lambda would retry it: {e}"));
        println!(
            "| {name} | {} | {} ms |",
            answer["rejected"],
            t.elapsed().as_millis()
        );
        let reason = answer["rejected"].as_str().unwrap_or_default();
        assert!(
            reason.starts_with(&format!("`{field}`")),
            "{name}: the reason names {field}: {answer}"
        );
    }
    // On the batch path, a body that is no JSON at all: dead-lettered at
    // once, not after five receives.
    let batch =
        json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m-1", "body": "{not json"}]});
    let answer = function
        .invoke(&batch, Duration::from_secs(10))
        .await
        .expect("a batch answer");
    assert_eq!(answer["batchItemFailures"], json!([]), "acknowledged");
    assert_eq!(items(&res).await, 0, "nothing reached the store");

    // Each is on the dead-letter queue once, with its reason.
    let queue = product::dead_letters_for_operator(&res);
    let mut letters = Vec::new();
    loop {
        let got = queue.receive(0, 60).await.expect("receive");
        if got.is_empty() {
            break;
        }
        letters.extend(got);
    }
    assert_eq!(letters.len(), cases.len() + 1);
    assert_eq!(
        letters.iter().filter(|m| m.letter.is_none()).count(),
        1,
        "the body that is no JSON is there, unreadable"
    );
    for (name, event, field) in &cases {
        let l = letters
            .iter()
            .filter_map(|m| m.letter.as_ref())
            .find(|l| l.event["id"] == event["id"])
            .unwrap_or_else(|| panic!("{name} is on the queue"));
        assert_eq!(l.origin, Origin::Rejected);
        let reason = l.reason.as_deref().unwrap_or_default();
        assert!(
            reason.starts_with(&format!("{REJECTED}: `{field}`")),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn outcome_ids_past_the_cap_of_a_flow_and_day_count_under_other() {
    let (sim, res) = crate::common::setup(Policies::default(), T).await;
    let handler = product::handler(&res, &sim);
    let outcome = testkit::fixtures::named("flow-outcome-success.json");
    let cap = va_analytics::MAX_NAMES_PER_FLOW_DAY;
    let extra = 7;
    for i in 0..cap + extra {
        let mut e = outcome.clone();
        e["id"] = json!(format!("outcome-{i}"));
        e["detail"]["eventBody"]["flowOutcomeId"] = json!(uuid::Uuid::new_v4().to_string());
        handler
            .handle(&e, tokio::time::Instant::now() + Duration::from_secs(10))
            .await
            .expect("counted");
    }
    let flow = outcome["detail"]["eventBody"]["flowId"]
        .as_str()
        .expect("flow id")
        .to_string();
    let store = product::store(&res);
    for scope in [va_analytics::Scope::Org, va_analytics::Scope::Flow(flow)] {
        let buckets = store
            .query(&scope, T - 3_600_000, T + 3_600_000)
            .await
            .expect("query");
        let mut names = std::collections::BTreeMap::<String, i64>::new();
        for b in &buckets {
            for (k, v) in &b.counters {
                if k.starts_with("o#") {
                    *names.entry(k.clone()).or_default() += v;
                }
            }
        }
        assert_eq!(names.len(), cap + 1, "{scope:?}: {cap} names and `other`");
        assert_eq!(
            names.get("o#other#success"),
            Some(&(extra as i64)),
            "{scope:?}"
        );
        assert_eq!(
            names.values().sum::<i64>(),
            (cap + extra) as i64,
            "{scope:?}: nothing lost"
        );
    }
}
