//! Synthetic minute cells, laid out as the handler writes them at
//! contact-center volume: every shard and both bot flows each minute (about
//! 100 events a minute per flow spread over 16 shards). For measuring reads
//! without replaying weeks of traffic.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::StreamExt;
use va_analytics::kpi::minute_sk;

use crate::aws::TestResources;

/// The flows the cells belong to.
pub const FLOWS: [&str; 2] = [
    "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c",
    "6b1e2d3c-4a5f-4e6d-9c7b-8a9f0e1d2c3b",
];

/// One minute cell of one shard and flow, with the counters a busy minute has.
pub fn cell(shard: u32, minute: i64, flow: &str) -> HashMap<String, AttributeValue> {
    let n = |v: i64| AttributeValue::N(v.to_string());
    HashMap::from([
        ("pk".into(), AttributeValue::S(format!("agg#s{shard:02}"))),
        (
            "sk".into(),
            AttributeValue::S(format!("{}#f#{flow}", minute_sk(minute))),
        ),
        ("started".into(), n(3)),
        ("ended".into(), n(3)),
        ("contained".into(), n(2)),
        ("escalated".into(), n(1)),
        ("duration_count".into(), n(3)),
        ("duration_ms_sum".into(), n(184_211)),
        ("d_le_60".into(), n(1)),
        ("d_le_120".into(), n(2)),
        ("span_2".into(), n(2)),
        ("span_1".into(), n(1)),
        ("i#CheckOrderStatus".into(), n(1)),
        ("i#TalkToAgent".into(), n(1)),
        (
            "o#e5f6a7b8-2222-4333-8444-555566667777#success".into(),
            n(1),
        ),
    ])
}

/// Writes `minutes` minutes ending at `end` (every shard, every flow: 32
/// cells a minute, what about 100 events a minute per flow spread over 16
/// shards gives).
pub async fn fill(res: &TestResources, end: i64, minutes: i64) {
    let mut items = Vec::new();
    for m in 0..minutes {
        let minute = end - m * 60_000;
        for shard in 0..va_analytics::store::BUCKET_SHARDS {
            for flow in FLOWS {
                items.push(cell(shard, minute, flow));
            }
        }
    }
    put_all(res, items).await;
}

/// Copies the hour cells the roll-up wrote (`hours` partition) `days - 1`
/// times, a day further back each time, and moves the roll-up's start back
/// with them: what `days` of rolled-up traffic at the same density looks like
/// to a reader, without rolling up weeks of minute cells in moto.
pub async fn spread_rolled_hours(res: &TestResources, days: i64) {
    let day = 86_400_000;
    let out = res
        .dynamodb
        .query()
        .table_name(&res.analytics_table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("hours".into()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("query hours: {e}"));
    assert!(out.last_evaluated_key().is_none(), "one page of hour cells");
    let mut items = Vec::new();
    let mut state = None;
    for item in out.items() {
        let Some(sk) = item.get("sk").and_then(|v| v.as_s().ok()) else {
            continue;
        };
        if sk == "state" {
            state = Some(item.clone());
            continue;
        }
        let Some((hour, rest)) = sk
            .strip_prefix("h#")
            .and_then(|r| r.split_once('#'))
            .and_then(|(h, rest)| Some((h.parse::<i64>().ok()?, rest)))
        else {
            continue;
        };
        for d in 1..days {
            let mut copy = item.clone();
            copy.insert(
                "sk".into(),
                AttributeValue::S(format!("h#{:013}#{rest}", hour - d * day)),
            );
            items.push(copy);
        }
    }
    let mut state = state.unwrap_or_else(|| panic!("rolled up first"));
    let from = state
        .get("rolled_from")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i64>().ok())
        .unwrap_or_else(|| panic!("rolled_from"));
    state.insert(
        "rolled_from".into(),
        AttributeValue::N((from - (days - 1) * day).to_string()),
    );
    items.push(state);
    put_all(res, items).await;
}

/// Writes `items` to the analytics table, 25 at a time, 8 batches at once.
async fn put_all(res: &TestResources, items: Vec<HashMap<String, AttributeValue>>) {
    let requests: Vec<WriteRequest> = items
        .into_iter()
        .map(|item| {
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .unwrap_or_else(|e| panic!("put request: {e}")),
                )
                .build()
        })
        .collect();
    let batches: Vec<Vec<WriteRequest>> = requests.chunks(25).map(<[_]>::to_vec).collect();
    let writes = batches.into_iter().map(|batch| {
        let (ddb, table) = (res.dynamodb.clone(), res.analytics_table.clone());
        async move {
            let mut pending = batch;
            while !pending.is_empty() {
                let out = ddb
                    .batch_write_item()
                    .request_items(&table, pending)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("batch write: {e}"));
                pending = out
                    .unprocessed_items()
                    .and_then(|m| m.get(&table).cloned())
                    .unwrap_or_default();
            }
        }
    });
    futures::stream::iter(writes)
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}
