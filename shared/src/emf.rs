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
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dims],
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

/// Prints one EMF line.
pub fn emit(
    function: &str,
    timestamp_ms: i64,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, f64)],
) {
    println!("{}", document(function, timestamp_ms, dimensions, metrics));
}
