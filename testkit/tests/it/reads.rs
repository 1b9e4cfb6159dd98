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
