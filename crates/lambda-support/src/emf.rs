//! CloudWatch Embedded Metric Format: one JSON line on stdout per metric set,
//! which Lambda ships to CloudWatch Logs and CloudWatch turns into metrics.

use serde_json::{Map, Value, json};

/// The namespace every function publishes under.
pub const NAMESPACE: &str = "GenesysVirtualAgent";

/// Builds one EMF document. Values are counts unless the name ends in
/// `Seconds` or `Milliseconds`.
pub fn document(
    function: &str,
    timestamp_ms: i64,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, f64)],
) -> Value {
    let unit = |name: &str| {
        if name.ends_with("Seconds") {
            "Seconds"
        } else if name.ends_with("Milliseconds") {
            "Milliseconds"
        } else {
            "Count"
        }
    };
    let mut dims: Vec<&str> = vec!["Function"];
    dims.extend(dimensions.iter().map(|(k, _)| *k));
    // Per-org (or other) values also roll up to the function alone, so an
    // alarm on `[Function]` sees them whatever the extra dimensions.
    let sets: Vec<Vec<&str>> = if dimensions.is_empty() {
        vec![dims]
    } else {
        vec![vec!["Function"], dims]
    };
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": sets,
                "Metrics": metrics.iter().map(|(n, _)| json!({"Name": n, "Unit": unit(n)})).collect::<Vec<_>>(),
            }]
        }),
    );
    doc.insert("Function".into(), json!(function));
    for (k, v) in dimensions {
        doc.insert((*k).into(), json!(v));
    }
    for (n, v) in metrics {
        doc.insert((*n).into(), json!(v));
    }
    Value::Object(doc)
}

/// Variable: `"false"` drops the `Org` dimension (per-org custom metrics
/// are billed one by one; the per-function totals remain).
pub const PER_ORG_METRICS: &str = "PER_ORG_METRICS";

/// Whether metrics carry their org (`PER_ORG_METRICS`, on unless `"false"`).
pub fn per_org_metrics(get: impl Fn(&str) -> Option<String>) -> bool {
    get(PER_ORG_METRICS).is_none_or(|v| v.trim() != "false")
}

/// [`per_org_metrics`] of the process environment, read once.
pub fn per_org_metrics_from_env() -> bool {
    static PER_ORG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PER_ORG.get_or_init(|| per_org_metrics(|k| std::env::var(k).ok()))
}

/// `dimensions` without `Org` when per-org metrics are off.
pub fn org_dimensions(org: Option<&str>, per_org: bool) -> Vec<(&'static str, &str)> {
    org.filter(|_| per_org)
        .map(|o| ("Org", o))
        .into_iter()
        .collect()
}

/// Prints one EMF line.
pub fn emit(
    function: &str,
    timestamp_ms: i64,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, f64)],
) {
    println!("{}", document(function, timestamp_ms, dimensions, metrics));
}

#[cfg(test)]
mod tests {
    #[test]
    fn per_org_metrics_are_on_unless_switched_off() {
        use super::{PER_ORG_METRICS, org_dimensions, per_org_metrics};
        assert!(per_org_metrics(|_| None));
        assert!(!per_org_metrics(
            |k| (k == PER_ORG_METRICS).then(|| "false".into())
        ));
        assert_eq!(org_dimensions(Some("o-1"), true), [("Org", "o-1")]);
        assert!(org_dimensions(Some("o-1"), false).is_empty());
        assert!(org_dimensions(None, true).is_empty());
    }

    #[test]
    fn extra_dimensions_also_roll_up_to_the_function() {
        let d = super::document(
            "token-refresher",
            1,
            &[("Org", "o-1")],
            &[("TokenRefreshFailed", 1.0)],
        );
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Function"], ["Function", "Org"]])
        );
        assert_eq!(d["Org"], "o-1");
        let plain = super::document("f", 1, &[], &[("X", 1.0)]);
        assert_eq!(
            plain["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Function"]])
        );
    }

    use super::*;

    #[test]
    fn a_document_declares_every_metric_with_its_unit_and_value() {
        let d = document(
            "token-refresher",
            1_000,
            &[("Slot", "0")],
            &[("TokensRefreshed", 1.0), ("TokenExpiresInSeconds", 3_000.0)],
        );
        let spec = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], NAMESPACE);
        assert_eq!(
            spec["Dimensions"][1],
            serde_json::json!(["Function", "Slot"])
        );
        assert_eq!(
            spec["Metrics"][0],
            serde_json::json!({"Name": "TokensRefreshed", "Unit": "Count"})
        );
        assert_eq!(spec["Metrics"][1]["Unit"], "Seconds");
        assert_eq!(d["_aws"]["Timestamp"], 1_000);
        assert_eq!(d["Function"], "token-refresher");
        assert_eq!(d["Slot"], "0");
        assert_eq!(d["TokenExpiresInSeconds"], 3_000.0);
    }
}
