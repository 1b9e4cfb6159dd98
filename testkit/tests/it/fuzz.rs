//! 100,000 generated inputs through parse + plan: arbitrary JSON, truncated
//! fixtures and mutated fixtures. None may panic; each is either an event or a
//! clear rejection. proptest: shrinking finds the smallest failing input.

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::{Map, Value};
use va_analytics::{Enrichment, KpiConfig, plan, plan_enrichment};
use va_events::{self as events, Event, Rejection};

/// Read once: the fixtures in testkit/fixtures/events/.
static FIXTURES: std::sync::LazyLock<Vec<(String, Value)>> =
    std::sync::LazyLock::new(testkit::fixtures::all);

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}

/// Either a usable event (whose plan is computed, with and without
/// enrichment) or a rejection that names a field and a problem.
fn check(result: Result<Event, Rejection>) -> Result<(), TestCaseError> {
    match result {
        Ok(e) => {
            let cfg = KpiConfig::default();
            let p = plan(&e, &cfg, None);
            prop_assert_eq!(p.event_id.as_str(), e.id());
            prop_assert!(p.buckets.len() < 100, "fits one transaction");
            // With a state that already holds a hand-back and a queue entry.
            if let Some(state) = &p.state {
                let again = plan(&e, &cfg, Some(state));
                prop_assert!(again.buckets.len() < 100);
            }
            if let Some(pending) = &p.pending {
                let found = Enrichment {
                    final_intent: Some("Intent".into()),
                    bot_result: Some("TransferToACD".into()),
                };
                let e = plan_enrichment(pending, Some(&found), p.state.as_ref());
                prop_assert!(e.buckets.len() < 100);
            }
        }
        Err(r) => {
            prop_assert!(!r.field.is_empty() && !r.problem.is_empty(), "{r:?}");
            prop_assert!(!r.event_id.is_empty());
            prop_assert!(r.to_string().starts_with("rejected event "));
        }
    }
    Ok(())
}

fn arb_json() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("id".to_string()),
        Just("detail".to_string()),
        Just("detail-type".to_string()),
        Just("source".to_string()),
        Just("time".to_string()),
        Just("topicName".to_string()),
        Just("eventBody".to_string()),
        Just("eventTime".to_string()),
        Just("flowId".to_string()),
        "[a-zA-Z]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        Just(Value::String(
            "v2.detail.events.conversation.c1.flow.end".into()
        )),
        Just(Value::String("2026-11-20T15:02:30Z".into())),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Every object path (as keys) inside `v`.
fn paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Value::Object(m) = v {
        for (k, child) in m {
            prefix.push(k.clone());
            out.push(prefix.clone());
            paths(child, prefix, out);
            prefix.pop();
        }
    }
}

fn mutate(mut v: Value, path: &[String], kind: u8, replacement: Value) -> Value {
    let Some((last, parents)) = path.split_last() else {
        return v;
    };
    let mut cur = &mut v;
    for p in parents {
        match cur.get_mut(p) {
            Some(next) => cur = next,
            None => return v,
        }
    }
    if let Value::Object(m) = cur {
        match kind % 3 {
            0 => {
                m.remove(last);
            }
            1 => {
                m.insert(last.clone(), replacement);
            }
            _ => {
                let flipped = match m.get(last) {
                    Some(Value::String(s)) => Value::from(s.len() as i64),
                    Some(Value::Number(n)) => Value::String(n.to_string()),
                    Some(Value::Object(_)) => Value::Array(vec![]),
                    _ => Value::Object(Map::new()),
                };
                m.insert(last.clone(), flipped);
            }
        }
    }
    v
}

proptest! {
    #![proptest_config(config(40_000))]
    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        check(events::parse(&v))?;
    }
}

proptest! {
    #![proptest_config(config(30_000))]
    #[test]
    fn truncated_fixtures_never_panic(which in 0usize..8, cut in 0.0f64..1.0) {
        let all = &*FIXTURES;
        let text = serde_json::to_string(&all[which % all.len()].1).unwrap_or_default();
        let cut = ((text.len() as f64) * cut) as usize;
        check(events::parse_slice(&text.as_bytes()[..cut]))?;
    }
}

proptest! {
    #![proptest_config(config(30_000))]
    #[test]
    fn mutated_fixtures_never_panic(which in 0usize..8, pick in any::<usize>(), kind in any::<u8>(), replacement in arb_json()) {
        let all = &*FIXTURES;
        let original = all[which % all.len()].1.clone();
        let mut ps = Vec::new();
        paths(&original, &mut Vec::new(), &mut ps);
        let path = ps[pick % ps.len()].clone();
        check(events::parse(&mutate(original, &path, kind, replacement)))?;
    }
}

/// A UUID, or something that only looks close to one.
fn arb_id() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).simple().to_string()),
        "[0-9a-f-]{30,40}",
        ".{0,40}",
        Just("../../tokens/me?x=".to_string()),
    ]
}

const DAY: i64 = 86_400_000;
const REMEMBERED: i64 = va_analytics::MARKER_TTL_S * 1000;

proptest! {
    #![proptest_config(config(20_000))]
    #[test]
    fn every_bound_holds_for_what_is_accepted(
        now in 946_684_800_000_i64..4_102_444_800_000,
        time_kind in 0u8..4,
        any_time in any::<i64>(),
        delta in -(40 * 86_400_000_i64)..(40 * 86_400_000_i64),
        flow_id in arb_id(),
        conversation_id in arb_id(),
        duration in prop_oneof![any::<i64>(), 0..=va_events::MAX_DURATION_MS, Just(i64::MAX)],
        exit_len in 0usize..300,
        id_len in 0usize..300,
        end in any::<bool>(),
    ) {
        // Anywhere in i64, near the clock, or at either end.
        let time = match time_kind {
            0 => any_time,
            1 => now.saturating_add(delta),
            2 => i64::MAX,
            _ => i64::MIN,
        };
        let topic = if end { "flow.end" } else { "flow.start" };
        let v = serde_json::json!({
            "version": "0",
            "id": "e".repeat(id_len.max(1)),
            "detail-type": format!("v2.detail.events.conversation.{{id}}.{topic}"),
            "source": "aws.partner/genesys.com/cloud/org/suffix",
            "account": "123456789012",
            "time": "2026-11-20T15:02:30Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "topicName": format!("v2.detail.events.conversation.{conversation_id}.{topic}"),
                "version": "2",
                "eventBody": {
                    "eventTime": time, "conversationId": conversation_id, "flowType": "BOT",
                    "flowId": flow_id, "connectedDurationMs": duration,
                    "exitReason": "x".repeat(exit_len), "disconnectType": "CLIENT"
                }
            }
        });
        let parsed = events::parse(&v)
            .and_then(|e| events::check_event_time(&e, now, REMEMBERED).map(|()| e));
        match parsed {
            Err(r) => {
                prop_assert!(!r.field.is_empty() && !r.problem.is_empty());
            }
            // A topic name the product does not read (the conversation id
            // made it unreadable): acknowledged, nothing counted.
            Ok(e @ Event::Unknown { .. }) => {
                prop_assert!(plan(&e, &KpiConfig::default(), None).is_noop());
            }
            Ok(e) => {
                prop_assert!(events::is_uuid(&flow_id) && events::is_uuid(&conversation_id));
                prop_assert!(id_len.max(1) <= events::MAX_EVENT_ID_BYTES);
                prop_assert!(exit_len <= events::MAX_NAME_BYTES);
                prop_assert!((now - REMEMBERED..=now + events::MAX_CLOCK_SKEW_MS).contains(&time));
                prop_assert!((0..=events::MAX_DURATION_MS).contains(&duration));
                let p = plan(&e, &KpiConfig::default(), None);
                prop_assert!(p.buckets.len() < 100, "fits one transaction");
                for ((_, minute), counters) in &p.buckets {
                    prop_assert!(*minute >= time - 32 * DAY && *minute <= time + DAY, "minute {minute} near {time}");
                    for v in counters.values() {
                        prop_assert!(v.unsigned_abs() <= (32 * DAY) as u64, "counter {v}");
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config(20_000))]
    #[test]
    fn dashboard_ranges_never_wrap(
        from in prop_oneof![Just(None), any::<i64>().prop_map(Some)],
        to in prop_oneof![Just(None), any::<i64>().prop_map(Some)],
        minutes in prop_oneof![Just(None), any::<i64>().prop_map(Some)],
        now in 946_684_800_000_i64..4_102_444_800_000,
    ) {
        if let Ok((f, t)) = va_analytics::dashboard::range(from, to, minutes, now) {
            prop_assert!(f <= t && t - f <= va_analytics::dashboard::MAX_RANGE_MS);
            prop_assert!(f >= va_events::MIN_EVENT_TIME_MS - va_analytics::dashboard::MAX_RANGE_MS);
            prop_assert!(t < va_events::MAX_EVENT_TIME_MS);
        }
    }
}
