//! Every item of a partition, page by page, with what reading it cost.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{AnalyticsError, AnalyticsStore, ReadStats, key};

/// How a `Query` pages, and whether it reads strongly consistent.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Read {
    pub(super) page: Option<usize>,
    pub(super) consistent: bool,
}

impl AnalyticsStore {
    /// Every item of partition `pk` whose sort key meets `sk_condition`
    /// (`#sk` and the `values` it names), in sort-key order, page by page,
    /// while `keep` returns true; `page` caps a page's size.
    pub(super) async fn each_item(
        &self,
        op: &'static str,
        pk: &str,
        sk_condition: &str,
        values: &[(&str, String)],
        read: Read,
        mut keep: impl FnMut(&HashMap<String, AttributeValue>) -> bool,
    ) -> Result<ReadStats, AnalyticsError> {
        let mut start = None;
        let mut stats = ReadStats::default();
        loop {
            let query = values.iter().fold(
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression(format!("#pk = :pk AND {sk_condition}"))
                    .expression_attribute_names("#pk", key::PK)
                    .expression_attribute_names("#sk", key::SK)
                    .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
                    .set_limit(
                        read.page
                            .map(|n| i32::try_from(n.clamp(1, 1_000)).unwrap_or(1_000)),
                    )
                    .consistent_read(read.consistent)
                    .set_exclusive_start_key(start),
                |q, (name, value)| {
                    q.expression_attribute_values(*name, AttributeValue::S(value.clone()))
                },
            );
            let resp = query
                .send()
                .await
                .map_err(|e| self.dynamodb(op, DisplayErrorContext(e)))?;
            stats.add_page(resp.items(), read.consistent);
            for item in resp.items() {
                if !keep(item) {
                    return Ok(stats);
                }
            }
            match resp.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(stats),
            }
        }
    }
}
