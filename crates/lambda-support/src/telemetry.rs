//! JSON logs for Lambda (CloudWatch Logs Insights can query the fields).

use tracing_subscriber::EnvFilter;

/// Installs a JSON subscriber once; `RUST_LOG` overrides the `info` default.
/// Its first line names the release (`version`), so a log says which code
/// wrote it.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
    tracing::info!(version = crate::VERSION, "starting");
}
