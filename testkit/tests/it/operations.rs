//! What an operator meets in the first weeks (issue 23), read from the
//! templates: every failure has an alarm, the stack deploys on an account
//! with a small concurrency quota, and an org stack deploys in both
//! delivery modes.

use serde_norway::Value;

use crate::template::{org_template, template};

/// A tagged value's tag and inner value (`!Ref X` -> ("Ref", "X")).
fn tagged(v: &Value) -> (String, Value) {
    match v {
        Value::Tagged(t) => (
            t.tag.to_string().trim_start_matches('!').to_string(),
            t.value.clone(),
        ),
        other => (String::new(), other.clone()),
    }
}

fn text(v: &Value) -> String {
    match tagged(v) {
        (_, Value::String(s)) => s,
        (_, Value::Number(n)) => n.to_string(),
        (_, other) => format!("{other:?}"),
    }
}

/// The alarm's metric, dimensions, comparison, threshold and missing-data
/// rule, as written.
struct Alarm {
    namespace: String,
    metric: String,
    dimensions: Vec<(String, String)>,
    comparison: String,
    threshold: Value,
    missing: Value,
}

fn alarm(t: &Value, name: &str) -> Alarm {
    let p = &t["Resources"][name]["Properties"];
    assert!(p.is_mapping(), "no alarm {name}");
    Alarm {
        namespace: text(&p["Namespace"]),
        metric: text(&p["MetricName"]),
        dimensions: p["Dimensions"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|d| (text(&d["Name"]), text(&d["Value"])))
            .collect(),
        comparison: text(&p["ComparisonOperator"]),
        threshold: p["Threshold"].clone(),
        missing: p["TreatMissingData"].clone(),
    }
}

#[test]
fn every_sweeper_roll_up_and_dashboard_failure_has_an_alarm() {
    let t = template();
    let sweeper = (
        "FunctionName".to_string(),
        "EnrichmentSweeperFunction".to_string(),
    );
    let emf = ("Function".to_string(), "enrichment-sweeper".to_string());
    for (name, namespace, metric, dimension, comparison) in [
        (
            "SweeperErrorsAlarm",
            "AWS/Lambda",
            "Errors",
            &sweeper,
            "GreaterThanOrEqualToThreshold",
        ),
        (
            "SweeperThrottlesAlarm",
            "AWS/Lambda",
            "Throttles",
            &sweeper,
            "GreaterThanOrEqualToThreshold",
        ),
        (
            "SweeperNotRunningAlarm",
            "AWS/Lambda",
            "Invocations",
            &sweeper,
            "LessThanThreshold",
        ),
        (
            "EnrichmentItemFailuresAlarm",
            "GenesysVirtualAgent",
            "EnrichmentItemFailures",
            &emf,
            "GreaterThanOrEqualToThreshold",
        ),
        (
            "RollUpFailuresAlarm",
            "GenesysVirtualAgent",
            "RollUpFailures",
            &emf,
            "GreaterThanOrEqualToThreshold",
        ),
        (
            "OldestPendingSessionAlarm",
            "GenesysVirtualAgent",
            "OldestPendingSeconds",
            &emf,
            "GreaterThanThreshold",
        ),
    ] {
        let a = alarm(&t, name);
        assert_eq!(
            (a.namespace.as_str(), a.metric.as_str()),
            (namespace, metric),
            "{name}"
        );
        assert_eq!(a.dimensions, vec![dimension.clone()], "{name}");
        assert_eq!(a.comparison, comparison, "{name}");
        // Silence is the failure for the "not running" alarm only.
        let breaching = name.ends_with("NotRunningAlarm");
        assert_eq!(
            text(&a.missing),
            if breaching {
                "breaching"
            } else {
                "notBreaching"
            },
            "{name}"
        );
    }
    // The metrics the sweeper emits are the ones alarmed on.
    let main = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../functions/enrichment-sweeper/src/main.rs"),
    )
    .expect("the sweeper's main");
    for metric in [
        "EnrichmentItemFailures",
        "RollUpFailures",
        "OldestPendingSeconds",
    ] {
        assert!(
            main.contains(&format!("(\"{metric}\"")),
            "{metric} is emitted"
        );
    }
    let dashboard = alarm(&t, "DashboardErrorsAlarm");
    assert_eq!(
        (dashboard.namespace.as_str(), dashboard.metric.as_str()),
        ("AWS/ApiGateway", "5xx")
    );
    assert_eq!(
        dashboard.dimensions,
        vec![("ApiId".to_string(), "DashboardHttpApi".to_string())]
    );
    let refresher = alarm(&t, "RefresherNotRunningAlarm");
    assert_eq!(refresher.metric, "Invocations");
    assert_eq!(text(&refresher.missing), "breaching");
}

/// Fires before expiry: under two refresher periods and 30 s left after a
/// tick. A period without data is not a finding in either tenancy (a tick
/// can outlast its period; many orgs have none before the first org): a
/// stopped refresher is RefresherNotRunningAlarm's, whose silence is.
#[test]
fn token_expiry_alarms_two_periods_before_expiry_in_both_tenancies() {
    let t = template();
    let a = alarm(&t, "TokenExpiryAlarm");
    let (tag, args) = tagged(&a.threshold);
    assert_eq!(tag, "FindInMap");
    assert_eq!(text(&args[2]), "ExpiryAlarmSeconds");
    let periods = t["Mappings"]["RefreshPeriods"].as_mapping().expect("map");
    assert_eq!(periods.len(), 3);
    for (minutes, row) in periods {
        let period: i64 = text(&row["Seconds"]).parse().expect("seconds");
        let threshold: i64 = text(&row["ExpiryAlarmSeconds"]).parse().expect("threshold");
        assert_eq!(threshold, 2 * period + 30, "{minutes:?}");
    }
    assert_eq!(text(&a.missing), "notBreaching");
    let stopped = alarm(&t, "RefresherNotRunningAlarm");
    assert_eq!(text(&stopped.missing), "breaching");
}

/// No function reserves concurrency unless its parameter says so (0 by
/// default): Lambda keeps 100 executions unreserved, so a fixed reservation
/// fails on an account whose quota is small. The Batch mapping has its own
/// cap, since mappings do not see reservations.
#[test]
fn the_stack_reserves_no_concurrency_by_default_and_caps_the_batch_mapping() {
    let t = template();
    let functions: Vec<&str> = t["Resources"]
        .as_mapping()
        .expect("resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .filter_map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(functions.len(), 4);
    for f in functions {
        let reserved = &t["Resources"][f]["Properties"]["ReservedConcurrentExecutions"];
        let (tag, args) = tagged(reserved);
        assert_eq!(tag, "If", "{f}: a parameter decides");
        let parameter = text(&args[1]);
        assert_eq!(text(&args[2]), "AWS::NoValue", "{f}");
        assert_eq!(
            text(&t["Parameters"][parameter.as_str()]["Default"]),
            "0",
            "{f}: {parameter} reserves none by default"
        );
    }
    let mapping = &t["Resources"]["BatchEventSource"]["Properties"];
    let cap = text(&mapping["ScalingConfig"]["MaximumConcurrency"]);
    assert_eq!(cap, "BatchMaximumConcurrency");
    let p = &t["Parameters"]["BatchMaximumConcurrency"];
    assert_eq!(text(&p["MinValue"]), "2", "the mapping's minimum");
    assert_eq!(text(&p["MaxValue"]), "1000", "the mapping's maximum");
}

/// Every name an org stack imports is exported by the main stack in both
/// delivery modes, and no import sits inside a condition.
#[test]
fn an_org_stack_imports_only_what_the_main_stack_always_exports() {
    let main = template();
    let always: Vec<String> = main["Outputs"]
        .as_mapping()
        .expect("outputs")
        .values()
        .filter(|o| o.get("Condition").is_none())
        .filter_map(|o| o.get("Export"))
        .map(|e| text(&e["Name"]))
        .collect();
    let org = org_template();
    let mut imports = Vec::new();
    collect_imports(&org, false, &mut imports);
    assert!(!imports.is_empty());
    for (name, under_if) in imports {
        assert!(!under_if, "{name} is imported inside Fn::If");
        let exported = name.replace("${MainStackName}", "${AWS::StackName}");
        assert!(always.contains(&exported), "{name} is not always exported");
    }
}

fn collect_imports(v: &Value, under_if: bool, out: &mut Vec<(String, bool)>) {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            collect_imports(&t.value, under_if || tag == "!If", out);
        }
        Value::Mapping(m) => {
            for (k, v) in m {
                match k.as_str() {
                    Some("Fn::ImportValue") => out.push((text(v), under_if)),
                    Some("Fn::If") => collect_imports(v, true, out),
                    _ => collect_imports(v, under_if, out),
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|i| collect_imports(i, under_if, out)),
        _ => {}
    }
}
