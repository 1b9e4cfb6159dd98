//! The dashboard in headless Chromium during a short local-stack run: it
//! shows data while the run goes on, and once the run is over the numbers the
//! page shows equal the numbers in the store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use testkit::stack::{self, Mode, StackOptions};
use va_analytics::{AnalyticsStore, Scope, attr};

use crate::common::eventually;

fn chromium() -> Option<PathBuf> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Chromium as the probe on this machine runs it: headless, no background
/// networking, a fresh profile.
fn headless(
    bin: &PathBuf,
    profile: &std::path::Path,
    extra: &[&str],
    url: &str,
) -> std::process::Output {
    Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1400,1000",
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs")
}

/// `data-value` of the element with `id`, from a dumped DOM.
fn shown(dom: &str, id: &str) -> Option<i64> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let tag_start = dom[..at].rfind('<')?;
    let tag = &dom[tag_start..at + dom[at..].find('>')?];
    let v = tag.split("data-value=\"").nth(1)?.split('"').next()?;
    v.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_in_headless_chromium_shows_the_numbers_in_the_store() {
    let Some(bin) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install Debian's chromium"
        );
        eprintln!("chromium not installed; skipping the browser test");
        return;
    };
    crate::common::capture_logs();
    let opts = StackOptions {
        containers: 5,
        minutes: 4,
        sessions_per_minute: 30,
        ..StackOptions::default()
    };
    let running = Arc::new(
        stack::start(&opts, stack::generate(&opts))
            .await
            .expect("stack"),
    );
    let (addr, _server) = stack::serve_dashboard(&running, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("dashboard");
    let url = stack::dashboard_url(addr, &running);
    let run = {
        let (running, opts) = (running.clone(), opts.clone());
        tokio::spawn(async move {
            stack::run_mode(&running, &opts, Mode::Broker, Arc::new(|_, _| {})).await
        })
    };
    let store = AnalyticsStore::new(
        running.res.dynamodb.clone(),
        running.res.analytics_table.clone(),
    );
    let started = |buckets: &[va_analytics::Bucket]| {
        buckets
            .iter()
            .map(|b| b.counters.get(attr::STARTED).copied().unwrap_or(0))
            .sum::<i64>()
    };
    eventually(
        Duration::from_secs(120),
        "sessions in the store",
        || async {
            started(
                &store
                    .query(&Scope::Org, 0, i64::MAX / 2)
                    .await
                    .unwrap_or_default(),
            ) > 0
        },
    )
    .await;

    let profile =
        std::env::temp_dir().join(format!("va-chromium-{}", uuid::Uuid::new_v4().simple()));
    // Cargo makes this folder for integration tests, wherever target/ is
    // (CI builds a copy of the repository into a target/ outside it).
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let during = headless(&bin, &profile, &["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&during.stdout);
    assert!(
        dom.contains("data-loaded=\"true\""),
        "the page loaded its data during the run: {}",
        String::from_utf8_lossy(&during.stderr)
    );
    assert!(
        shown(&dom, "total-started").unwrap_or(0) > 0,
        "the page shows sessions during the run"
    );
    let shot = headless(
        &bin,
        &profile,
        &[&format!("--screenshot={}", screenshot.display())],
        &url,
    );
    assert!(
        shot.status.success() && screenshot.exists(),
        "screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );

    let report = run.await.expect("run");
    assert!(report.exactly_once, "{:?}", report.differences);
    let after = headless(&bin, &profile, &["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&after.stdout);
    let (from, to) = {
        let q = url.split('?').nth(1).unwrap_or_default();
        let get = |k: &str| {
            let prefix = format!("{k}=");
            q.split('&').find_map(|p| {
                p.strip_prefix(prefix.as_str())
                    .and_then(|v| v.parse::<i64>().ok())
            })
        };
        (get("from").unwrap_or(0), get("to").unwrap_or(0))
    };
    let buckets = store.query(&Scope::Org, from, to).await.expect("query");
    let total = |name: &str| {
        buckets
            .iter()
            .map(|b| b.counters.get(name).copied().unwrap_or(0))
            .sum::<i64>()
    };
    for (id, name) in [
        ("total-started", attr::STARTED),
        ("total-ended", attr::ENDED),
        ("total-contained", attr::CONTAINED),
        ("total-escalated", attr::ESCALATED),
        ("total-abandoned", attr::ABANDONED),
        ("total-recognition-failures", attr::RECOGNITION_FAILURES),
        ("total-errors", attr::ERRORS),
    ] {
        assert_eq!(
            shown(&dom, id),
            Some(total(name)),
            "{id} on the page vs {name} in the store"
        );
    }
    assert!(total(attr::STARTED) > 0);
    let _ = std::fs::remove_dir_all(&profile);
    running.res.delete().await.expect("cleanup");
}
