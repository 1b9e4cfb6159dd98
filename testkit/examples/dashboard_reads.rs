//! Benchmark of dashboard reads per range: queries, items, read units (the
//! API's own account, as DynamoDB charges a `Query`) and latency against
//! moto, over a day of minute cells at contact-center density
//! (`testkit::cells`).
//!
//! `cargo run --release -p testkit --example dashboard_reads`

use testkit::aws::TestResources;
use testkit::cells;
use testkit::sim::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use va_analytics::dashboard::snapshot;
use va_analytics::{AnalyticsStore, Scope};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).await?;
    let now: i64 = 1_795_186_980_000;
    cells::fill(&res, now, 1_440).await;
    let store = AnalyticsStore::new(res.dynamodb.clone(), res.analytics_table.clone());
    let tokens = token_broker::TokenStore::new(res.dynamodb.clone(), res.token_table.clone(), "x");
    println!(
        "| range | bucket | points | queries | items | read units | latency against moto (ms, median of 3) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (label, span) in [("1 hour", 3_600_000i64), ("1 day", 86_400_000 - 60_000)] {
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            last = Some(snapshot(&store, &tokens, 1, &Scope::Org, now - span, now, now).await?);
            times.push(t.elapsed().as_millis());
        }
        times.sort_unstable();
        let s = last.ok_or("no read")?;
        println!(
            "| {label} | {} | {} | {} | {} | {:.1} | {} |",
            s.bucket,
            s.series.len(),
            s.reads.queries,
            s.reads.items,
            s.reads.read_units,
            times[1]
        );
    }
    res.delete().await?;
    Ok(())
}
