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
    let mut requests = Vec::new();
    for m in 0..minutes {
        let minute = end - m * 60_000;
        for shard in 0..va_analytics::store::BUCKET_SHARDS {
            for flow in FLOWS {
                requests.push(
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(cell(shard, minute, flow)))
                                .build()
                                .unwrap_or_else(|e| panic!("put request: {e}")),
                        )
                        .build(),
                );
            }
        }
    }
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
