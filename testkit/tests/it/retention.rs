//! Retention (issue 26): the cells a function writes carry the `ttl` its
//! configuration sets (`MinuteCellRetentionDays`, `HourCellRetentionDays`
//! in the template, the same variables in the functions).

use std::sync::Arc;
use std::time::Duration;

use testkit::aws::TestResources;
use testkit::cells;
use testkit::sim::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimClock};
use va_analytics::retention::{HOUR_CELL_RETENTION_DAYS, MINUTE_CELL_RETENTION_DAYS};

const DAY_S: i64 = 86_400;

/// Every item of the partition kind `prefix` (`agg#`, `hours`): its sort
/// key and its `ttl`.
async fn ttls(res: &TestResources, prefix: &str) -> Vec<(String, Option<i64>)> {
    let page = res
        .dynamodb
        .scan()
        .table_name(&res.analytics_table)
        .send()
        .await
        .expect("scan");
    page.items()
        .iter()
        .filter(|i| i["pk"].as_s().is_ok_and(|pk| pk.starts_with(prefix)))
        .map(|i| {
            let ttl = i
                .get("ttl")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok());
            (i["sk"].as_s().cloned().unwrap_or_default(), ttl)
        })
        .collect()
}

#[tokio::test]
async fn cells_carry_the_ttl_their_retention_sets() {
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let cfg = va_handler::HandlerConfig::from_lookup(|k| match k {
        va_handler::config::ANALYTICS_TABLE => Some(res.analytics_table.clone()),
        MINUTE_CELL_RETENTION_DAYS => Some("40".into()),
        HOUR_CELL_RETENTION_DAYS => Some("500".into()),
        _ => None,
    })
    .expect("config");
    let store = testkit::product::store(&res).with_retention(cfg.retention);
    let event = testkit::fixtures::named("flow-end-contained.json");
    let at = event["detail"]["eventBody"]["eventTime"]
        .as_i64()
        .or_else(|| event["detail"]["eventTime"].as_i64())
        .unwrap_or(1_795_187_012_345);
    let handler = va_handler::EventHandler::new(
        store.clone(),
        cfg.kpi.clone(),
        Arc::new(SimClock::frozen_at(at + 60_000)),
    );
    handler
        .handle(
            &event,
            tokio::time::Instant::now() + Duration::from_secs(30),
        )
        .await
        .expect("counted");
    let minute_cells = ttls(&res, "agg#").await;
    assert!(!minute_cells.is_empty(), "the event wrote a cell");
    for (sk, ttl) in &minute_cells {
        let minute: i64 = sk[2..15].parse().expect("minute");
        assert_eq!(*ttl, Some(minute / 1000 + 40 * DAY_S), "{sk}");
    }

    // A sealed hour of synthetic cells, rolled up: its hour cells.
    let hour = 3_600_000;
    let end = at - at % hour - hour - 60_000;
    cells::fill(&res, end, 60).await;
    let far = tokio::time::Instant::now() + Duration::from_secs(3_600);
    store
        .roll_up(end + 3 * hour, 2, far)
        .await
        .expect("roll-up");
    let hour_cells: Vec<_> = ttls(&res, "hours")
        .await
        .into_iter()
        .filter(|(sk, _)| sk.starts_with("h#"))
        .collect();
    assert!(!hour_cells.is_empty(), "the roll-up wrote hour cells");
    for (sk, ttl) in &hour_cells {
        let start: i64 = sk[2..15].parse().expect("hour");
        assert_eq!(*ttl, Some(start / 1000 + 500 * DAY_S), "{sk}");
    }
    res.delete().await.expect("cleanup");
}
