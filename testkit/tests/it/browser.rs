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

/// Chromium is here; without it the test is skipped, except in CI.
fn chromium_here() -> bool {
    if testkit::browser::chromium().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must install Debian's chromium"
    );
    eprintln!("chromium not installed; skipping the browser test");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_in_headless_chromium_signs_in_and_shows_the_numbers_in_the_store() {
    if !chromium_here() {
        return;
    }
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
        during
            .dom
            .contains(&format!("va-analytics {}", lambda_support::VERSION)),
        "the footer names the release"
    );
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

/// The everyday path of issue 14 in headless Chromium, at 1400 and 800 px:
/// pick a flow by name, switch ranges, sort the per-flow table, export both
/// CSVs. Every number the page shows or exports equals the store's;
/// screenshots are saved beside the test binary's temporary folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_picks_a_flow_by_name_switches_ranges_sorts_and_exports() {
    if !chromium_here() {
        return;
    }
    let opts = StackOptions {
        containers: 4,
        minutes: 5,
        sessions_per_minute: 30,
        ..StackOptions::default()
    };
    let running = stack::start(&opts, stack::generate(&opts))
        .await
        .expect("stack");
    let report = stack::run_mode(&running, &opts, Mode::Broker, Arc::new(|_, _| {})).await;
    assert!(report.exactly_once, "{:?}", report.differences);
    let (addr, _server) = stack::serve_dashboard(&running, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("dashboard");
    let url = stack::dashboard_url(addr, &running);
    let (from, to) = {
        let q = url.split('?').nth(1).unwrap_or_default().to_string();
        let get = |k: &str| {
            q.split('&')
                .find_map(|p| {
                    p.strip_prefix(&format!("{k}="))
                        .and_then(|v| v.parse::<i64>().ok())
                })
                .unwrap_or(0)
        };
        (get("from"), get("to"))
    };
    let store = AnalyticsStore::new(
        running.res.dynamodb.clone(),
        running.res.analytics_table.clone(),
    );
    let breakdown = store
        .query_breakdown(&Scope::Org, from, to)
        .await
        .expect("query");
    let names: std::collections::BTreeMap<String, String> = running
        .traffic
        .conversations
        .iter()
        .map(|c| (c.detail.flow_id.clone(), c.detail.flow_name.clone()))
        .collect();
    let picked_name = "Voice Virtual Agent";
    let picked_id = names
        .iter()
        .find(|(_, n)| n.as_str() == picked_name)
        .map(|(id, _)| id.clone())
        .expect("the traffic has that flow");
    let sum = |buckets: &[va_analytics::Bucket], k: &str| {
        buckets
            .iter()
            .map(|b| b.counters.get(k).copied().unwrap_or(0))
            .sum::<i64>()
    };

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let (user, password) = (
        running.sign_in.username.clone(),
        running.sign_in.password.clone(),
    );
    for width in [1400u32, 800] {
        let shots = (
            dir.join(format!("dashboard-{width}.png")),
            dir.join(format!("dashboard-{width}-flow-7d.png")),
        );
        let seen = {
            let (url, user, password, shots) =
                (url.clone(), user.clone(), password.clone(), shots.clone());
            tokio::task::spawn_blocking(move || {
                testkit::browser::explore(
                    &url,
                    &user,
                    &password,
                    width,
                    (&shots.0, &shots.1),
                    picked_name,
                )
            })
            .await
            .expect("driver")
            .expect("explore")
        };
        assert!(
            shots.0.exists() && shots.1.exists(),
            "screenshots at {width} px"
        );
        assert_eq!(seen.bucket, "minute", "a few minutes: per minute");
        assert!(seen.tooltips > 0, "a tooltip per point");
        assert!(
            seen.definition
                .as_deref()
                .is_some_and(|d| d.contains("contained") || d.contains("queue")),
            "each column says what it counts: {:?}",
            seen.definition
        );

        // The per-flow table, exported: one row per flow, by name, the store's numbers.
        let mut lines = seen.flows_csv.text.lines();
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        let col = |row: &[String], name: &str| -> String {
            let at = header.iter().position(|h| *h == name).expect("column");
            row[at].clone()
        };
        let rows: Vec<Vec<String>> = lines
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect();
        assert!(seen.flows_csv.name.starts_with("flows_") && seen.flows_csv.name.ends_with(".csv"));
        assert_eq!(rows.len(), breakdown.flows.len(), "{}", seen.flows_csv.text);
        for row in &rows {
            let id = col(row, "flow_id");
            let totals = &breakdown.flows[&id];
            let get = |k: &str| totals.get(k).copied().unwrap_or(0).to_string();
            assert_eq!(col(row, "name"), names[&id], "flows by name, not id");
            for (column, counter) in [
                ("sessions", attr::STARTED),
                ("ended", attr::ENDED),
                ("contained", attr::CONTAINED),
                ("escalated", attr::ESCALATED),
                ("abandoned", attr::ABANDONED),
                ("recognition_failures", attr::RECOGNITION_FAILURES),
            ] {
                assert_eq!(col(row, column), get(counter), "{id} {column}");
            }
        }
        // The series, exported: per minute, summing to the store's total.
        let series: Vec<&str> = seen.series_csv.text.lines().collect();
        let started_at = series[0]
            .split(',')
            .position(|h| h == "started")
            .expect("started");
        let exported: i64 = series[1..]
            .iter()
            .filter_map(|l| l.split(',').nth(started_at)?.parse::<i64>().ok())
            .sum();
        assert_eq!(exported, sum(&breakdown.buckets, attr::STARTED));

        // Sorted by containment, highest first (ties by id), as the store has it.
        let rate = |id: &String| {
            let t = &breakdown.flows[id];
            let ended = t.get(attr::ENDED).copied().unwrap_or(0);
            (ended > 0).then(|| t.get(attr::CONTAINED).copied().unwrap_or(0) as f64 / ended as f64)
        };
        let mut expected: Vec<String> = breakdown.flows.keys().cloned().collect();
        expected.sort_by(|a, b| {
            rate(b)
                .unwrap_or(-1.0)
                .total_cmp(&rate(a).unwrap_or(-1.0))
                .then(a.cmp(b))
        });
        assert_eq!(seen.sorted_by, "containment_rate:desc");
        assert_eq!(seen.sorted_ids, expected);

        // Picked by name: that flow's own numbers.
        assert_eq!(seen.picked_flow, picked_id);
        assert!(
            seen.picked_scope.contains(picked_name),
            "{}",
            seen.picked_scope
        );
        let flow = store
            .query(&Scope::Flow(picked_id.clone()), from, to)
            .await
            .expect("query");
        assert_eq!(seen.picked_started, sum(&flow, attr::STARTED));
        assert!(seen.picked_started > 0);

        // 7 days, per hour, ending at the dashboard's now: the flow's whole run.
        let now = running.sim.clock().now_ms();
        let (f7, t7) = va_analytics::dashboard::preset_range("7d", now).expect("preset");
        let week = store
            .query(&Scope::Flow(picked_id.clone()), f7, t7)
            .await
            .expect("query");
        assert_eq!(seen.range, "7d");
        assert_eq!(seen.range_bucket, "hour");
        assert_eq!(seen.range_started, sum(&week, attr::STARTED));
        assert!(
            seen.url.contains("range=7d") && seen.url.contains(&format!("flow={picked_id}")),
            "the page keeps its state in its address: {}",
            seen.url
        );
    }
    running.res.delete().await.expect("cleanup");
}
