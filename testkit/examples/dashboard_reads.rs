//! Benchmark of dashboard reads per range: queries, items, read units (the
//! API's own account, as DynamoDB charges a `Query`) and latency against
//! moto, over a day of minute cells at contact-center density
//! (`testkit::cells`).
//!
//! 1. Before any roll-up: every range reads minute cells (1 hour, 1 day).
//! 2. The sweeper's roll-up (`AnalyticsStore::roll_up`) runs over that day;
//!    its own cost is printed.
//! 3. The day's hour cells are copied back over 31 days
//!    (`cells::spread_rolled_hours`), and every preset is read again.
//!
//! `cargo run -p testkit --example dashboard_reads [-- --skip-before]`

use testkit::aws::TestResources;
use testkit::cells;
use testkit::sim::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use token_broker::TokenStore;
use va_analytics::dashboard::{preset_range, snapshot};
use va_analytics::{AnalyticsStore, Scope};

const HOUR: i64 = 3_600_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let skip_before = std::env::args().any(|a| a == "--skip-before");
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).await?;
    let now: i64 = 1_795_186_980_000;
    cells::fill(&res, now, 1_440).await;
    let store = AnalyticsStore::new(res.dynamodb.clone(), res.analytics_table.clone());
    let tokens = TokenStore::new(res.dynamodb.clone(), res.token_table.clone(), "x");
    let day_of_hours = (now - now.rem_euclid(HOUR) - 23 * HOUR, now);
    if !skip_before {
        println!("Before roll-ups (minute cells only):\n");
        header();
        for (label, (from, to)) in [
            ("last hour", preset_range("last_hour", now)?),
            ("24 hours", day_of_hours),
        ] {
            row(&store, &tokens, label, from, to, now).await?;
        }
    }
    let started = std::time::Instant::now();
    let (mut sealed, mut runs) = (0, 0);
    loop {
        let far = tokio::time::Instant::now() + std::time::Duration::from_secs(3_600);
        let r = store.roll_up(now, 24, far).await?;
        if r.sealed == 0 {
            break;
        }
        sealed += r.sealed;
        runs += 1;
    }
    println!(
        "\nRoll-up: {sealed} hours in {runs} sweeps, {} ms against moto\n",
        started.elapsed().as_millis()
    );
    cells::spread_rolled_hours(&res, 31).await;
    println!("After roll-ups (31 days of hour cells, the last day's minute cells):\n");
    header();
    for (label, (from, to)) in [
        ("last hour", preset_range("last_hour", now)?),
        ("24 hours", day_of_hours),
        ("7 days", preset_range("7d", now)?),
        ("31 days", preset_range("31d", now)?),
    ] {
        row(&store, &tokens, label, from, to, now).await?;
    }
    res.delete().await?;
    Ok(())
}

fn header() {
    println!(
        "| range | bucket | points | queries | items | read units | latency against moto (ms, median of 3) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
}

async fn row(
    store: &AnalyticsStore,
    tokens: &TokenStore,
    label: &str,
    from: i64,
    to: i64,
    now: i64,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        last = Some(snapshot(store, tokens, 1, &Scope::Org, from, to, now).await?);
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
    Ok(())
}
