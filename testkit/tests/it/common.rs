use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use testkit::sim::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Policies, SimClock, SimConfig, Simulator,
};

/// A simulator frozen at `start_ms` with `policies`, and fresh moto
/// resources (tables, secret, dead-letter queue); logs captured.
pub(crate) async fn setup(
    policies: Policies,
    start_ms: i64,
) -> (Simulator, testkit::aws::TestResources) {
    capture_logs();
    let sim = Simulator::start(SimConfig {
        policies,
        clock: Arc::new(SimClock::frozen_at(start_ms)),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let res = testkit::aws::TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    (sim, res)
}

/// A simulator with a frozen clock, so tests move time explicitly.
pub(crate) async fn frozen_sim(policies: Policies) -> Simulator {
    let config = SimConfig {
        policies,
        clock: Arc::new(SimClock::frozen_at(1_763_650_000_000)),
        ..SimConfig::default()
    };
    Simulator::start(config).await.expect("simulator starts")
}

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("reqwest client")
}

/// Client-credentials grant with the default client; returns the raw response.
pub(crate) async fn token_request(sim: &Simulator, secret: &str, grant: &str) -> reqwest::Response {
    http()
        .post(format!("{}/oauth/token", sim.base_url()))
        .basic_auth(DEFAULT_CLIENT_ID, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type={grant}"))
        .send()
        .await
        .expect("token request sent")
}

pub(crate) async fn new_token(sim: &Simulator) -> String {
    let r = token_request(sim, DEFAULT_CLIENT_SECRET, "client_credentials").await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

pub(crate) async fn api_get(sim: &Simulator, token: &str, path: &str) -> reqwest::Response {
    http()
        .get(format!("{}{path}", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("api request sent")
}

/// Polls `cond` until it holds; fails the test after `within`.
pub(crate) async fn eventually<F, Fut>(within: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every log line any test in this process emitted, as JSON text.
static LOGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(String::from_utf8_lossy(buf).into_owned());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends all tracing output of this process (debug and up, the AWS SDK's
/// included) to the capture buffer.
pub(crate) fn capture_logs() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter("debug,hyper=info,hyper_util=info,h2=info,rustls=info,reqwest=debug")
            .with_writer(|| Capture)
            .try_init();
    });
}

pub(crate) fn captured_logs() -> Vec<String> {
    LOGS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// No captured line contains any token the simulator issued or the client secret.
pub(crate) fn assert_logs_clean(sim: &Simulator, extra_secrets: &[&str]) {
    let logs = captured_logs();
    assert!(!logs.is_empty(), "logs are being captured");
    let mut secrets: Vec<String> = sim.issued_token_values();
    secrets.push(DEFAULT_CLIENT_SECRET.to_string());
    secrets.extend(extra_secrets.iter().map(|s| s.to_string()));
    for line in &logs {
        for s in &secrets {
            assert!(
                !line.contains(s.as_str()),
                "a secret or token reached a log line: {line}"
            );
        }
    }
}
