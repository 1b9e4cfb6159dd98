//! What a dashboard read costs: every answer accounts for its reads
//! (`reads`: queries, items, read units as DynamoDB charges a `Query`).
//! The figures per range (1 hour, 1 day) are the `dashboard_reads` example's
//! (BENCHMARKS.md).

use testkit::aws::TestResources;
use testkit::cells;
use testkit::sim::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use va_analytics::dashboard::snapshot;
use va_analytics::{AnalyticsStore, Scope};

#[tokio::test]
async fn an_answer_accounts_for_every_cell_it_read() {
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let now: i64 = 1_795_186_980_000;
    cells::fill(&res, now, 61).await;
    let store = AnalyticsStore::new(res.dynamodb.clone(), res.analytics_table.clone());
    let tokens = token_broker::TokenStore::new(res.dynamodb.clone(), res.token_table.clone(), "x");
    let t = std::time::Instant::now();
    let s = snapshot(&store, &tokens, 1, &Scope::Org, now - 3_600_000, now, now)
        .await
        .expect("snapshot");
    println!(
        "1 hour, table holding only that hour: {} ms, {:?}",
        t.elapsed().as_millis(),
        s.reads
    );
    let cells_read = 61 * 16 * 2;
    assert_eq!(
        s.reads.items, cells_read,
        "every cell of the hour, nothing else"
    );
    assert_eq!(
        s.reads.queries,
        16 + 1,
        "one query per shard and one for the names"
    );
    assert!(s.reads.read_units >= 16.0 * 0.5, "{:?}", s.reads);
    assert_eq!(s.totals["started"], 3 * cells_read as i64);
    assert_eq!((s.bucket, s.series.len()), ("minute", 61));
    assert_eq!(s.flows.len(), 2);
    res.delete().await.expect("cleanup");
}

/// Hour cells (the sweeper's roll-up) give the same figures as the minute
/// cells they sum, for the org and for each flow, at a fraction of the reads.
#[tokio::test]
async fn rolled_up_hours_read_the_same_figures_for_a_fraction_of_the_cost() {
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let hour = 3_600_000;
    let now: i64 = 1_795_186_980_000 - 1_795_186_980_000 % hour + 30 * 60_000;
    // Five hours of cells up to now; the range read below holds three whole
    // sealed hours.
    cells::fill(&res, now, 5 * 60).await;
    let store = AnalyticsStore::new(res.dynamodb.clone(), res.analytics_table.clone());
    // The first run rolls the last sealed hour and works back to the
    // oldest cell, two hours at a time here.
    let mut sealed = 0;
    loop {
        let far = tokio::time::Instant::now() + std::time::Duration::from_secs(3_600);
        let report = store.roll_up(now, 2, far).await.expect("roll-up");
        if report.sealed == 0 {
            break;
        }
        sealed += report.sealed;
    }
    // Cells start 29 minutes into the hour 5 hours back: that partial hour
    // and the three after it are sealed.
    assert_eq!(sealed, 4, "the sealed hours, back to the oldest cell");
    let from = now - 5 * 60 * 60_000 + 60_000;
    for scope in [Scope::Org, Scope::Flow(cells::FLOWS[0].to_string())] {
        let minutes = store
            .query_breakdown(&scope, from, now)
            .await
            .expect("minutes");
        let rolled = store.query_rolled(&scope, from, now).await.expect("rolled");
        let by_hour = |b: &[va_analytics::Bucket]| {
            va_analytics::dashboard::rebucket(b, hour, from, now)
                .into_iter()
                .map(|p| (p.start_ms, p.counters))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            by_hour(&rolled.buckets),
            by_hour(&minutes.buckets),
            "{scope:?}"
        );
        assert_eq!(rolled.flows, minutes.flows, "{scope:?}");
        // The three sealed hours (3 x 60 minutes x 32 cells) come from 3 x 3
        // hour cells; the minute reads beside them look 44 minutes ahead.
        let cells_per_minute = 32;
        assert!(
            rolled.reads.items
                <= minutes.reads.items - 3 * 60 * cells_per_minute + 45 * cells_per_minute + 20,
            "{:?} vs {:?}",
            rolled.reads,
            minutes.reads
        );
    }
    res.delete().await.expect("cleanup");
}

/// A conversation delivered hours late (a backlog, a redrive) lands in an
/// hour already rolled up: its transaction marks the hour dirty, reads fall
/// back to that hour's minute cells at once, and the next roll-up folds it
/// in and clears the mark. No answer is ever missing the late events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_event_marks_its_rolled_hour_dirty_until_the_next_roll_up() {
    use std::time::Duration;
    use testkit::replay::{self, Repeats};
    use testkit::sim::Policies;
    use testkit::traffic::{self, TrafficConfig};

    let hour = 3_600_000;
    let t = traffic::generate(&TrafficConfig {
        seed: 77,
        sessions_per_minute: 2,
        minutes: 90,
        ..TrafficConfig::default()
    });
    let start = t.events.iter().map(|e| e.at_ms).min().expect("events");
    let first_hour = start - start.rem_euclid(hour) + hour;
    // Conversations that begin 20 to 40 minutes into the first whole hour
    // arrive three and a half hours late.
    let mut begins = std::collections::HashMap::new();
    for e in &t.events {
        let b = begins.entry(e.conversation_id.clone()).or_insert(e.at_ms);
        *b = (*b).min(e.at_ms);
    }
    let late_ids: std::collections::HashSet<String> = begins
        .into_iter()
        .filter(|(_, b)| (first_hour + 20 * 60_000..first_hour + 40 * 60_000).contains(b))
        .map(|(id, _)| id)
        .collect();
    assert!(!late_ids.is_empty(), "some conversations are held back");
    let (late, on_time): (Vec<_>, Vec<_>) = replay::deliveries(
        &t,
        Repeats {
            duplicates: 0.0,
            resends: 0.0,
        },
        7,
    )
    .into_iter()
    .partition(|d| {
        d.event
            .pointer("/detail/eventBody/conversationId")
            .and_then(|v| v.as_str())
            .is_some_and(|id| late_ids.contains(id))
    });
    assert!(!late.is_empty(), "late deliveries found by conversation id");
    let (sim, res) = crate::common::setup(Policies::default(), start).await;
    let handler = testkit::product::handler(&res, &sim);
    let clock = sim.clock();
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(30);
    for d in &on_time {
        clock.advance_to(d.at_ms);
        handler.handle(&d.event, deadline()).await.expect("on time");
    }
    let now = first_hour + 4 * hour + 30 * 60_000;
    clock.advance_to(now);
    let store = testkit::product::store(&res);
    let far = || tokio::time::Instant::now() + Duration::from_secs(3_600);
    while store
        .roll_up(clock.now_ms(), 24, far())
        .await
        .expect("roll-up")
        .sealed
        > 0
    {}
    // Both paths, for the org and for every flow, over the whole range and
    // over one that starts mid-hour and ends on an hour's last minute.
    let read = || {
        let store = store.clone();
        async move {
            let mut org = None;
            for (from, to) in [
                (first_hour - hour, now),
                (
                    first_hour - hour + 17 * 60_000,
                    first_hour + 2 * hour - 60_000,
                ),
            ] {
                let by_hour = |b: &[va_analytics::Bucket]| {
                    va_analytics::dashboard::rebucket(b, hour, from, to)
                        .into_iter()
                        .map(|p| (p.start_ms, p.counters))
                        .collect::<Vec<_>>()
                };
                let all = store
                    .query_breakdown(&Scope::Org, from, to)
                    .await
                    .expect("minutes");
                assert!(all.flows.len() >= 2, "{:?}", all.flows.keys());
                let scopes = std::iter::once(Scope::Org)
                    .chain(all.flows.keys().map(|f| Scope::Flow(f.clone())));
                for scope in scopes {
                    let minutes = store
                        .query_breakdown(&scope, from, to)
                        .await
                        .expect("minutes");
                    let rolled = store.query_rolled(&scope, from, to).await.expect("rolled");
                    assert_eq!(
                        by_hour(&rolled.buckets),
                        by_hour(&minutes.buckets),
                        "{scope:?} {from}..{to}"
                    );
                    assert_eq!(rolled.flows, minutes.flows, "{scope:?} {from}..{to}");
                    if scope == Scope::Org && org.is_none() {
                        org = Some((by_hour(&minutes.buckets), rolled.reads.items));
                    }
                }
            }
            org.expect("the org's answer")
        }
    };
    let (before, clean_items) = read().await;

    // The late conversations, delivered now.
    for d in &late {
        handler.handle(&d.event, deadline()).await.expect("late");
    }
    // Dirty: the answer already has them, from the hour's minute cells.
    let (with_late, dirty_items) = read().await;
    assert_ne!(with_late, before, "the late events count");
    assert!(
        dirty_items > clean_items,
        "a dirty hour is read from minute cells ({dirty_items} vs {clean_items} items)"
    );
    let report = store
        .roll_up(clock.now_ms(), 24, far())
        .await
        .expect("re-roll");
    assert!(report.rerolled >= 1, "{report:?}");
    assert_eq!(report.sealed, 0, "{report:?}");
    // Rolled again: the same figures from hour cells, and the mark is gone.
    let (after, items) = read().await;
    assert_eq!(after, with_late);
    assert_eq!(items, clean_items, "back to hour cells");
    let again = store
        .roll_up(clock.now_ms(), 24, far())
        .await
        .expect("idle");
    assert_eq!((again.sealed, again.rerolled), (0, 0), "{again:?}");
    res.delete().await.expect("cleanup");
}

/// The live refresh (issue 25): a minute view asked with `live=1` answers as
/// a full read and hands back its settled part; a refresh that sends that
/// part back (`POST`) reads only the last minutes, answers as a full read
/// again (cells written since included), and costs a fraction of one. A
/// settled part of another view, or not one at all, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_refresh_reads_only_the_last_minutes_and_answers_as_a_full_read() {
    use std::sync::Arc;
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let minute: i64 = 1_795_186_980_000;
    let now = minute + 30_000;
    cells::fill(&res, minute, 61).await;
    let sign_in = testkit::sign_in::LocalSignIn::create(&res.config)
        .await
        .expect("cognito");
    let bearer = format!("Bearer {}", sign_in.access_token().await.expect("token"));
    let api = testkit::product::dashboard(
        &res,
        Arc::new(testkit::sim::SimClock::frozen_at(now)),
        1,
        va_analytics::dashboard::auth::Verifier::new(sign_in.auth.clone()),
    );
    let query = |live: bool| {
        let mut q = vec![("range".to_string(), "last_hour".to_string())];
        if live {
            q.push(("live".into(), "1".into()));
        }
        q
    };
    let ask = |method: &'static str, live: bool, body: Option<String>| {
        let (api, bearer, q) = (&api, &bearer, query(live));
        async move {
            let r = api
                .reply_with_body(method, "/api/dashboard", &q, Some(bearer), body.as_deref())
                .await;
            (
                r.status,
                serde_json::from_str::<serde_json::Value>(&r.body).expect("json"),
            )
        }
    };
    // What the page shows: everything but the settled part, the reads' cost
    // and the time of the answer.
    let figures = |mut v: serde_json::Value| {
        for k in ["settled", "reads", "generated_at_ms"] {
            v.as_object_mut().expect("object").remove(k);
        }
        v
    };
    let (status, first) = ask("GET", true, None).await;
    assert_eq!(status, 200, "{first}");
    let settled = first["settled"].clone();
    assert!(
        settled.is_object(),
        "a live answer carries its settled part"
    );
    let (_, full) = ask("GET", false, None).await;
    assert!(full.get("settled").is_none());
    assert_eq!(figures(first.clone()), figures(full.clone()));

    // A third flow's cell in the current minute, written after the settled part was read.
    res.dynamodb
        .put_item()
        .table_name(&res.analytics_table)
        .set_item(Some(cells::cell(
            3,
            minute,
            "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
        )))
        .send()
        .await
        .expect("a new cell");
    let (status, live) = ask("POST", false, Some(settled.to_string())).await;
    assert_eq!(status, 200, "{live}");
    let (_, full_now) = ask("GET", false, None).await;
    assert_ne!(
        figures(full_now.clone()),
        figures(full.clone()),
        "the new cell shows"
    );
    assert_eq!(figures(live.clone()), figures(full_now.clone()));
    let units = |v: &serde_json::Value| v["reads"]["read_units"].as_f64().expect("units");
    println!(
        "last hour at contact-center density: full read {} read units ({} items), the same with live=1 (two parts) {}, live refresh {} ({} items)",
        units(&full_now),
        full_now["reads"]["items"],
        units(&first),
        units(&live),
        live["reads"]["items"]
    );
    assert!(
        units(&live) * 3.0 < units(&full_now),
        "a fraction of a full read"
    );

    // Another view's settled part, or none: refused, the page reads whole.
    let mut other = settled.clone();
    other["from_ms"] = serde_json::json!(settled["from_ms"].as_i64().expect("from") - 60_000);
    assert_eq!(ask("POST", false, Some(other.to_string())).await.0, 409);
    assert_eq!(ask("POST", false, Some("{}".into())).await.0, 400);
    assert_eq!(ask("POST", false, None).await.0, 400);
    res.delete().await.expect("cleanup");
}
