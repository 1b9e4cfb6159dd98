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
