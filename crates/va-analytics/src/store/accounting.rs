//! What reads cost, as DynamoDB charges them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

/// What reads cost, as DynamoDB charges a `Query`: per page, the size of the
/// items read, rounded up to 4 KB, half a unit per 4 KB (eventually
/// consistent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ReadStats {
    /// Requests (query pages).
    pub queries: u64,
    /// Items read.
    pub items: u64,
    /// Read capacity units, as DynamoDB charges them (per 4 KB a page;
    /// half for an eventually consistent read).
    pub read_units: f64,
}

impl ReadStats {
    /// A page costs a unit per 4 KB read strongly consistent, half that
    /// eventually consistent.
    pub(super) fn add_page(&mut self, items: &[HashMap<String, AttributeValue>], consistent: bool) {
        let bytes: usize = items.iter().map(item_bytes).sum();
        self.queries += 1;
        self.items += items.len() as u64;
        let per_4k = if consistent { 1.0 } else { 0.5 };
        self.read_units += (bytes.div_ceil(4096).max(1)) as f64 * per_4k;
    }

    /// Adds another read's cost.
    pub fn merge(&mut self, other: &ReadStats) {
        self.queries += other.queries;
        self.items += other.items;
        self.read_units += other.read_units;
    }
}

/// An item's size as DynamoDB counts it: names and values.
fn item_bytes(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(k, v)| {
            k.len()
                + match v {
                    AttributeValue::S(s) => s.len(),
                    AttributeValue::N(n) => n.len().div_ceil(2) + 1,
                    AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
                    AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
                    _ => 8,
                }
        })
        .sum()
}
