//! The example EventBridge envelopes in `testkit/fixtures/events/`: one per
//! topic shape the product reads, plus two it must acknowledge and ignore.

use std::path::PathBuf;

use serde_json::Value;

/// The folder of fixture envelopes.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/events")
}

/// Every fixture as (file name, JSON), sorted by name.
///
/// # Panics
/// When the folder or a file cannot be read or is not JSON: a broken checkout.
pub fn all() -> Vec<(String, Value)> {
    let dir = dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fixtures folder {}: {e}", dir.display()));
    let mut out: Vec<(String, Value)> = entries
        .map(|entry| {
            let path = entry
                .unwrap_or_else(|e| panic!("fixtures folder {}: {e}", dir.display()))
                .path();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
            let value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", path.display()));
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The fixture `name` (a file name of [`dir`]).
///
/// # Panics
/// When there is no such fixture: a broken checkout or a typo in a test.
pub fn named(name: &str) -> Value {
    all()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}
