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
    // Five hours of cells up to now: the first three are sealed.
    cells::fill(&res, now, 5 * 60).await;
    let store = AnalyticsStore::new(res.dynamodb.clone(), res.analytics_table.clone());
    // Two sweeps' worth: the first run backfills 48 hours, 24 at a time.
    let mut sealed = 0;
    loop {
        let report = store.roll_up(now, 24).await.expect("roll-up");
        if report.sealed == 0 {
            break;
        }
        sealed += report.sealed;
    }
    assert_eq!(sealed, 48, "48 hours back to the last sealed one");
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
