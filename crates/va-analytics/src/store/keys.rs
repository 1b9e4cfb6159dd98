//! The key layout: partition and sort keys, org prefixes and org tags.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::AnalyticsStore;
use crate::kpi::{PendingEnrichment, minute_sk};
use crate::org_items::{self, ORG_SHARD};

/// Key attribute names of the analytics table.
pub mod key {
    /// Partition key.
    pub const PK: &str = "pk";
    /// Sort key.
    pub const SK: &str = "sk";
    /// DynamoDB TTL (epoch seconds): of event markers, states, pending
    /// enrichments, names, and cells (crate::retention).
    pub const TTL: &str = "ttl";
    /// When a marker was written (epoch ms).
    pub const AT: &str = "at";
    /// A flow's name (flow-name items).
    pub const NAME: &str = "name";
    /// The EventBridge id of the delivery that wrote a marker.
    pub const EVENTBRIDGE_ID: &str = "eventbridge_id";
    /// A conversation's state (JSON).
    pub const STATE: &str = "state";
    /// The state's version (optimistic concurrency).
    pub const VERSION: &str = "version";
    /// A pending enrichment (JSON).
    pub const PENDING: &str = "pending";
}

/// The environment variable every function reads the analytics table's name from.
pub const ANALYTICS_TABLE: &str = "ANALYTICS_TABLE";

/// Partition of the bot sessions waiting for enrichment (after the org's
/// prefix); sort key `<end ms, 13 digits>#<conversation>#<session key>`, so
/// one `Query` lists those ready, oldest first.
pub const PENDING_PK: &str = "pending#enrichment";
pub(super) const STATE_SK: &str = "state";

/// What every partition key of an org starts with: `org#<orgId>#`, so one
/// `dynamodb:LeadingKeys` pattern (`org#<orgId>#*`) covers an org's items and
/// nothing of another's. The implicit org of a single-org deployment (`""`)
/// has no prefix: its keys are those of the first version, unmigrated.
pub fn org_prefix(org_id: &str) -> String {
    if org_id.is_empty() {
        String::new()
    } else {
        format!("org#{org_id}#")
    }
}

pub(super) fn pending_sk(p: &PendingEnrichment) -> String {
    format!(
        "{:013}#{}#{}",
        p.end_ms.max(0),
        p.conversation_id,
        p.session_key
    )
}

/// Shards of the bucket items. 16 keeps a flow at 2,000 events/s under
/// DynamoDB's 1,000 write units a second per partition and its conflict odds
/// per item low, while a read stays 16 parallel queries.
pub const BUCKET_SHARDS: u32 = 16;

pub(super) fn cell_sk(minute_ms: i64, flow: Option<&str>) -> String {
    match flow {
        Some(f) => format!("{}#f#{f}", minute_sk(minute_ms)),
        None => format!("{}#-", minute_sk(minute_ms)),
    }
}

/// (minute start, flow) of a bucket item's sort key.
pub(super) fn parse_cell_sk(sk: &str) -> Option<(i64, Option<String>)> {
    let rest = sk.strip_prefix("m#")?;
    let (minute, cell) = rest.split_once('#')?;
    let minute = minute.parse().ok()?;
    match cell {
        "-" => Some((minute, None)),
        c => Some((minute, Some(c.strip_prefix("f#")?.to_string()))),
    }
}

impl AnalyticsStore {
    /// The org tag of the item in partition `pk` (see [`crate::org_items`]).
    pub(super) fn tag(&self, pk: &str) -> Option<AttributeValue> {
        org_items::tag(&self.org_id, pk)
    }

    /// The org tag of `pk` as the start of an item (`None`: untagged).
    pub(super) fn tagged_item(&self, pk: &str) -> Option<HashMap<String, AttributeValue>> {
        self.tag(pk)
            .map(|t| HashMap::from([(ORG_SHARD.to_string(), t)]))
    }

    /// `expr` (an update expression) that also sets the org tag of `pk`,
    /// and the tag's value; `expr` unchanged for the implicit org.
    pub(super) fn tagged(&self, pk: &str, expr: &str) -> (String, Option<AttributeValue>) {
        match self.tag(pk) {
            None => (expr.to_string(), None),
            Some(t) if expr.contains("SET ") => {
                (format!("{expr}, #org_shard = :org_shard"), Some(t))
            }
            Some(t) => (format!("{expr} SET #org_shard = :org_shard"), Some(t)),
        }
    }

    /// One partition key of each kind this store writes or reads, by kind
    /// (`buckets`, `state`, `pending`, `names`, `markers`): what an IAM
    /// policy's `dynamodb:LeadingKeys` must admit (tests hold the template
    /// to it).
    pub fn partition_kinds(&self) -> Vec<(&'static str, String)> {
        vec![
            ("buckets", self.shard_pk(0)),
            ("buckets", self.shard_pk(BUCKET_SHARDS - 1)),
            (
                "state",
                self.state_pk("5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f"),
            ),
            ("pending", self.pending_pk()),
            (
                "names",
                self.names_key("c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c", 0).0,
            ),
            ("markers", self.marker_pk("flow.end#c#p#1#f")),
            ("flow names", self.flows_pk()),
            ("hours", self.hours_pk()),
            ("dirty marks", self.dirty_pk(0)),
            ("dirty marks", self.dirty_pk(BUCKET_SHARDS - 1)),
        ]
    }

    /// Every partition of this org whose key is known without reading:
    /// the cell shards, dirty marks, pending enrichments, flow names and
    /// hours (the rest, one per conversation, event or flow, are found
    /// through the org tag).
    pub(crate) fn known_partitions(&self) -> Vec<String> {
        let mut out: Vec<String> = (0..BUCKET_SHARDS)
            .flat_map(|s| [self.shard_pk(s), self.dirty_pk(s)])
            .collect();
        out.extend([self.pending_pk(), self.flows_pk(), self.hours_pk()]);
        out
    }

    pub(super) fn flows_pk(&self) -> String {
        format!("{}flows", self.prefix)
    }

    /// Hour cells and the roll-up's state share this partition; only the
    /// sweeper writes it.
    pub(super) fn hours_pk(&self) -> String {
        format!("{}hours", self.prefix)
    }

    /// Dirty marks, in 16 partitions like the cells: a backlog of late
    /// events spreads over them as its cell writes do.
    pub(super) fn dirty_pk(&self, shard: u32) -> String {
        format!("{}dirty#s{shard:02}", self.prefix)
    }

    pub(super) fn marker_pk(&self, marker: &str) -> String {
        format!("{}event#{marker}", self.prefix)
    }

    pub(crate) fn shard_pk(&self, shard: u32) -> String {
        format!("{}agg#s{shard:02}", self.prefix)
    }

    pub(super) fn state_pk(&self, conversation_id: &str) -> String {
        format!("{}conv#{conversation_id}", self.prefix)
    }

    pub(super) fn pending_pk(&self) -> String {
        format!("{}{PENDING_PK}", self.prefix)
    }

    /// The registry item of a flow's names for a day.
    pub(super) fn names_key(&self, flow: &str, day: i64) -> (String, String) {
        (format!("{}names#{flow}", self.prefix), format!("d#{day}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_sort_keys_round_trip() {
        assert_eq!(
            parse_cell_sk(&cell_sk(120_000, None)),
            Some((120_000, None))
        );
        assert_eq!(
            parse_cell_sk(&cell_sk(120_000, Some("a#b"))),
            Some((120_000, Some("a#b".to_string())))
        );
        assert_eq!(parse_cell_sk("event"), None);
    }
}
