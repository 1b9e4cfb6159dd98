//! Deleting every item of one org (offboarding), by key, never by scan: the
//! org's partitions of the [`ORG_ITEMS_INDEX`] index, plus the partitions
//! whose keys are known without it (their items may predate the tag).
//! Items written before the tag in per-conversation, per-event and per-flow
//! partitions are not found; each of them carries a `ttl` at most
//! [`crate::MARKER_TTL_S`] plus two days ahead and expires on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use serde::Serialize;

use crate::org_items::{ORG_ITEMS_INDEX, ORG_SHARD, org_shards};
use crate::store::{AnalyticsError, AnalyticsStore, key, org_prefix};

/// `BatchWriteItem` takes at most 25 requests (API reference).
const BATCH: usize = 25;
/// Attempts at a batch's unprocessed items before giving up.
const ATTEMPTS: u32 = 8;
/// Passes over the index: its entries follow the table by a moment
/// (eventually consistent), so a pass that still finds items is followed by
/// another.
const PASSES: u32 = 4;

/// What a purge found and deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Items found, by kind (the key's segment after the org prefix:
    /// `agg`, `event`, `conv`, `pending`, `names`, `flows`, `hours`, `dirty`).
    pub found: BTreeMap<String, usize>,
    /// Items deleted (0 in a dry run).
    pub deleted: usize,
}

impl PurgeReport {
    /// Items found, of every kind.
    pub fn total(&self) -> usize {
        self.found.values().sum()
    }
}

/// An item's key.
type ItemKey = (String, String);

/// One org's items, found by key and deleted in batches.
pub struct OrgPurge {
    store: AnalyticsStore,
    org_id: String,
}

impl OrgPurge {
    /// The items of `org_id` (a real org: never the implicit one) in
    /// `store`'s table.
    pub fn new(store: &AnalyticsStore, org_id: &str) -> Result<Self, AnalyticsError> {
        if org_id.is_empty() {
            return Err(AnalyticsError::Invalid {
                reason: "the implicit org of a single-org deployment cannot be purged by key"
                    .into(),
            });
        }
        Ok(Self {
            store: store.for_org(org_id),
            org_id: org_id.to_string(),
        })
    }

    /// Counts the org's items, and deletes them unless `dry_run`; deletes
    /// until a pass finds nothing (at most `PASSES`).
    pub async fn run(&self, dry_run: bool) -> Result<PurgeReport, AnalyticsError> {
        let mut report = PurgeReport::default();
        for _ in 0..PASSES {
            let keys = self.keys().await?;
            if keys.is_empty() {
                break;
            }
            for (pk, _) in &keys {
                *report.found.entry(kind(&self.org_id, pk)).or_default() += 1;
            }
            if dry_run {
                break;
            }
            self.delete(&keys).await?;
            report.deleted += keys.len();
        }
        Ok(report)
    }

    /// Every key the org's index partitions and known partitions hold, of
    /// the org only.
    pub async fn keys(&self) -> Result<BTreeSet<ItemKey>, AnalyticsError> {
        let mut out = BTreeSet::new();
        let client = self.store.client();
        for shard in org_shards(&self.org_id) {
            let q = client
                .query()
                .index_name(ORG_ITEMS_INDEX)
                .key_condition_expression("#s = :s")
                .expression_attribute_names("#s", ORG_SHARD)
                .expression_attribute_values(":s", AttributeValue::S(shard));
            self.collect(q, &mut out).await?;
        }
        for pk in self.store.known_partitions() {
            let q = client
                .query()
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", key::PK)
                .expression_attribute_values(":pk", AttributeValue::S(pk))
                .projection_expression("#pk, #sk")
                .expression_attribute_names("#sk", key::SK);
            self.collect(q, &mut out).await?;
        }
        let prefix = org_prefix(&self.org_id);
        out.retain(|(pk, _)| pk.starts_with(&prefix));
        Ok(out)
    }

    async fn collect(
        &self,
        query: QueryFluentBuilder,
        out: &mut BTreeSet<ItemKey>,
    ) -> Result<(), AnalyticsError> {
        let mut start = None;
        loop {
            let resp = query
                .clone()
                .table_name(self.store.table())
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.store.dynamodb("Query (purge)", DisplayErrorContext(e)))?;
            for item in resp.items() {
                if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
                    (item.get(key::PK), item.get(key::SK))
                {
                    out.insert((pk.clone(), sk.clone()));
                }
            }
            match resp.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(()),
            }
        }
    }

    async fn delete(&self, keys: &BTreeSet<ItemKey>) -> Result<(), AnalyticsError> {
        let all: Vec<&ItemKey> = keys.iter().collect();
        for chunk in all.chunks(BATCH) {
            let mut requests = chunk
                .iter()
                .map(|(pk, sk)| delete_request(pk, sk))
                .collect::<Result<Vec<_>, _>>()?;
            let mut pause = Duration::from_millis(50);
            for attempt in 1..=ATTEMPTS {
                let resp = self
                    .store
                    .client()
                    .batch_write_item()
                    .request_items(self.store.table(), requests)
                    .send()
                    .await
                    .map_err(|e| {
                        self.store
                            .dynamodb("BatchWriteItem (purge)", DisplayErrorContext(e))
                    })?;
                requests = resp
                    .unprocessed_items()
                    .and_then(|u| u.get(self.store.table()))
                    .cloned()
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt == ATTEMPTS {
                    return Err(AnalyticsError::Throttled {
                        reason: format!(
                            "{} deletes still unprocessed after {ATTEMPTS} attempts; run the purge again",
                            requests.len()
                        ),
                    });
                }
                // Unprocessed items mean throttling: back off (API reference).
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
        Ok(())
    }
}

fn delete_request(pk: &str, sk: &str) -> Result<WriteRequest, AnalyticsError> {
    let delete = DeleteRequest::builder()
        .key(key::PK, AttributeValue::S(pk.to_string()))
        .key(key::SK, AttributeValue::S(sk.to_string()))
        .build()
        .map_err(|e| AnalyticsError::Invalid {
            reason: e.to_string(),
        })?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

/// The kind of an org's partition key: its segment after the org prefix.
fn kind(org_id: &str, pk: &str) -> String {
    pk.strip_prefix(&org_prefix(org_id))
        .and_then(|rest| rest.split('#').next())
        .unwrap_or("other")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_counted_under_its_segment_after_the_org_prefix() {
        let org = "0b7c5ab1-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(kind(org, &format!("org#{org}#agg#s03")), "agg");
        assert_eq!(kind(org, &format!("org#{org}#event#flow.end#c#p")), "event");
        assert_eq!(kind(org, &format!("org#{org}#flows")), "flows");
        assert_eq!(kind(org, "agg#s03"), "other");
    }
}
