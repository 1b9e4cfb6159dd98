//! The DynamoDB store that counts each event exactly once.
//!
//! Layout (one table, key `pk`/`sk`, both strings):
//! - buckets: `pk = agg#org` or `agg#flow#<flowId>`, `sk = m#<minute start,
//!   epoch ms, 13 digits>`, one number attribute per counter (see [`attr`]);
//!   a time range is one `Query` on `pk` with `sk BETWEEN`.
//! - event markers: `pk = event#<EventBridge id>`, `sk = event`, `ttl` five
//!   days out.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::Serialize;

use crate::kpi::{Plan, Scope, minute_of, minute_sk};
#[cfg(doc)]
use crate::kpi::attr;

/// Key attribute names of the analytics table.
pub mod key {
    /// Partition key.
    pub const PK: &str = "pk";
    /// Sort key.
    pub const SK: &str = "sk";
    /// DynamoDB TTL (epoch seconds) of event markers.
    pub const TTL: &str = "ttl";
    /// When a marker was written (epoch ms).
    pub const AT: &str = "at";
}

/// Whether an event was counted by this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// Counted now.
    Processed,
    /// Counted before (its marker exists).
    Duplicate,
}

/// The store could not be written or read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AnalyticsError {
    /// DynamoDB failed.
    #[error("DynamoDB {op} on table {table} failed: {reason}")]
    DynamoDb {
        /// The operation.
        op: &'static str,
        /// The table.
        table: String,
        /// The SDK's error chain.
        reason: String,
    },
    /// More items than one transaction holds.
    #[error("event {event_id} touches {items} items; a transaction holds at most 100")]
    TooLarge {
        /// The event's id.
        event_id: String,
        /// Items it would write.
        items: usize,
    },
}

/// One bucket as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Minute start, epoch ms.
    pub minute_ms: i64,
    /// Counter name -> value.
    pub counters: BTreeMap<String, i64>,
}

/// Event markers' `ttl`: five days, longer than an event can be delivered again.
pub const MARKER_TTL_S: i64 = 5 * 86_400;

/// The analytics table.
#[derive(Debug, Clone)]
pub struct AnalyticsStore {
    client: Client,
    table: String,
}

impl AnalyticsStore {
    /// The store in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The marker and every bucket update in one `TransactWriteItems`: one
    /// round trip, all or nothing. A repeated event id is a duplicate.
    pub async fn apply(&self, plan: &Plan, now_ms: i64) -> Result<Applied, AnalyticsError> {
        let items = plan.buckets.len() + 1;
        if items > 100 {
            return Err(AnalyticsError::TooLarge {
                event_id: plan.event_id.clone(),
                items,
            });
        }
        let err = |reason: String| AnalyticsError::DynamoDb {
            op: "TransactWriteItems",
            table: self.table.clone(),
            reason,
        };
        let marker = Put::builder()
            .table_name(&self.table)
            .item(key::PK, AttributeValue::S(format!("event#{}", plan.event_id)))
            .item(key::SK, AttributeValue::S("event".into()))
            .item(key::AT, AttributeValue::N(now_ms.to_string()))
            .item(
                key::TTL,
                AttributeValue::N((now_ms / 1000 + MARKER_TTL_S).to_string()),
            )
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", key::PK)
            .build()
            .map_err(|e| err(e.to_string()))?;
        let mut tx = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(marker).build());
        for ((scope, minute), counters) in &plan.buckets {
            let mut names = HashMap::new();
            let mut values = HashMap::new();
            let mut adds = Vec::new();
            for (i, (name, n)) in counters.iter().enumerate() {
                names.insert(format!("#a{i}"), name.clone());
                values.insert(format!(":v{i}"), AttributeValue::N(n.to_string()));
                adds.push(format!("#a{i} :v{i}"));
            }
            let update = Update::builder()
                .table_name(&self.table)
                .key(key::PK, AttributeValue::S(scope.pk()))
                .key(key::SK, AttributeValue::S(minute_sk(*minute)))
                .update_expression(format!("ADD {}", adds.join(", ")))
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .build()
                .map_err(|e| err(e.to_string()))?;
            tx = tx.transact_items(TransactWriteItem::builder().update(update).build());
        }
        match tx.send().await {
            Ok(_) => Ok(Applied::Processed),
            Err(e) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
                if let Some(TransactWriteItemsError::TransactionCanceledException(c)) =
                    e.as_service_error()
                {
                    let first = c.cancellation_reasons().first().and_then(|r| r.code());
                    if first == Some("ConditionalCheckFailed") {
                        return Ok(Applied::Duplicate);
                    }
                }
                Err(err(DisplayErrorContext(e).to_string()))
            }
        }
    }

    /// Buckets of one scope with `from_ms <= minute <= to_ms`: one `Query` (paged).
    pub async fn query(
        &self,
        scope: &Scope,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Bucket>, AnalyticsError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let resp = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#pk", key::PK)
                .expression_attribute_names("#sk", key::SK)
                .expression_attribute_values(":pk", AttributeValue::S(scope.pk()))
                .expression_attribute_values(
                    ":from",
                    AttributeValue::S(minute_sk(minute_of(from_ms))),
                )
                .expression_attribute_values(":to", AttributeValue::S(minute_sk(minute_of(to_ms))))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| AnalyticsError::DynamoDb {
                    op: "Query",
                    table: self.table.clone(),
                    reason: DisplayErrorContext(e).to_string(),
                })?;
            for item in resp.items() {
                let minute_ms = item
                    .get(key::SK)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|s| s.strip_prefix("m#"))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let counters = item
                    .iter()
                    .filter(|(k, _)| k.as_str() != key::PK && k.as_str() != key::SK)
                    .filter_map(|(k, v)| Some((k.clone(), v.as_n().ok()?.parse::<i64>().ok()?)))
                    .collect();
                out.push(Bucket {
                    minute_ms,
                    counters,
                });
            }
            match resp.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(out)
    }
}
