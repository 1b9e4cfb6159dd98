//! The dashboard in headless Chromium during a short local-stack run: the
//! page asks for a sign-in (moto's Cognito), refuses a wrong password, and
//! once signed in shows data while the run goes on; once the run is over the
//! numbers the page shows equal the numbers in the store. Without a token
//! the data route answers 401.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use testkit::stack::{self, Mode, StackOptions};
use va_analytics::{AnalyticsStore, Scope, attr};

use crate::common::eventually;

/// `data-value` of the element with `id`, from a dumped DOM.
fn shown(dom: &str, id: &str) -> Option<i64> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let tag_start = dom[..at].rfind('<')?;
    let tag = &dom[tag_start..at + dom[at..].find('>')?];
    let v = tag.split("data-value=\"").nth(1)?.split('"').next()?;
    v.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_in_headless_chromium_signs_in_and_shows_the_numbers_in_the_store() {
    let Some(_) = testkit::browser::chromium() else {
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

    // The data needs a sign-in; the page does not.
    let http = reqwest::Client::new();
    let data = format!("http://{addr}/api/dashboard");
    let anonymous = http.get(&data).send().await.expect("request");
    assert_eq!(anonymous.status(), 401);
    let body: serde_json::Value = anonymous.json().await.expect("json");
    assert_eq!(body["error"], "sign_in_required");
    let forged = http
        .get(&data)
        .bearer_auth("eyJhbGciOiJub25lIn0.eyJ0b2tlbl91c2UiOiJhY2Nlc3MifQ.")
        .send()
        .await
        .expect("request");
    assert_eq!(forged.status(), 401);
    let token = running.sign_in.access_token().await.expect("sign in");
    let signed = http
        .get(&data)
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(signed.status(), 200);

    let (user, password) = (
        running.sign_in.username.clone(),
        running.sign_in.password.clone(),
    );
    // Cargo makes this folder for integration tests, wherever target/ is
    // (CI builds a copy of the repository into a target/ outside it).
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let during = {
        let (url, user, password, shot) = (
            url.clone(),
            user.clone(),
            password.clone(),
            screenshot.clone(),
        );
        tokio::task::spawn_blocking(move || {
            testkit::browser::visit(&url, &user, &password, true, 1400, Some(&shot))
        })
        .await
        .expect("driver")
        .expect("visit during the run")
    };
    assert!(
        during.dashboard_hidden_before_sign_in,
        "no data before the sign-in"
    );
    assert_eq!(during.dashboard_hidden_after_wrong_password, Some(true));
    assert!(
        during
            .wrong_password
            .as_deref()
            .is_some_and(|m| m.contains("Incorrect username or password")),
        "a wrong password is refused: {:?}",
        during.wrong_password
    );
    assert!(
        shown(&during.dom, "total-started").unwrap_or(0) > 0,
        "the page shows sessions during the run"
    );
    assert!(screenshot.exists(), "screenshot");
    assert!(
        !during.dom.contains(&password),
        "the password is not left in the page"
    );

    let report = run.await.expect("run");
    assert!(report.exactly_once, "{:?}", report.differences);
    let after = {
        let (url, user, password) = (url.clone(), user.clone(), password.clone());
        tokio::task::spawn_blocking(move || {
            testkit::browser::visit(&url, &user, &password, false, 1400, None)
        })
        .await
        .expect("driver")
        .expect("visit after the run")
    };
    let dom = after.dom;
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
    running.res.delete().await.expect("cleanup");
}
