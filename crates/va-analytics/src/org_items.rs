//! The org tag: every item an org writes carries [`ORG_SHARD`] =
//! `<orgId>#<shard, 2 digits>`, the partition key of the sparse, keys-only
//! index [`ORG_ITEMS_INDEX`]. An org's items spread over many partitions (one
//! per conversation, one per event marker), so without the tag "every item
//! of this org" is a scan of the whole table; with it, [`ORG_SHARDS`]
//! queries of the index (`va-admin org offboard`).
//!
//! Cost: DynamoDB writes an index entry when an item first gets the
//! attribute; a later write that leaves the index key as it was and changes
//! no projected attribute (keys only) writes nothing to the index
//! (Developer Guide, "Global secondary indexes", section on writes). So one
//! write unit per new item: per counted event its marker, per conversation its
//! state, per minute and shard its cell. The implicit org of a single-org
//! deployment (no prefix) is never tagged and pays nothing.
//!
//! The shard spreads one org's index entries over [`ORG_SHARDS`] index
//! partitions, as the cells spread over shards, so a busy org's index writes
//! stay below one partition's 1,000 write units a second.

use aws_sdk_dynamodb::types::AttributeValue;

/// The sparse index over every org's items (keys only).
pub const ORG_ITEMS_INDEX: &str = "OrgItems";
/// Its partition key attribute: `<orgId>#<shard, 2 digits>`.
pub const ORG_SHARD: &str = "org_shard";
/// Index partitions per org.
pub const ORG_SHARDS: u32 = 16;

/// The tag of the item with partition key `pk` written for `org_id`, or
/// `None` for the implicit org (`""`). Stable for a given `pk`, so a rewrite
/// never moves the item in the index (which would cost two index writes).
pub fn org_shard(org_id: &str, pk: &str) -> Option<String> {
    if org_id.is_empty() {
        return None;
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = pk.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    Some(format!("{org_id}#{:02}", hash % ORG_SHARDS))
}

/// Every index partition of `org_id`'s items.
pub fn org_shards(org_id: &str) -> impl Iterator<Item = String> + '_ {
    (0..ORG_SHARDS).map(move |s| format!("{org_id}#{s:02}"))
}

/// The tag as an attribute value.
pub(crate) fn tag(org_id: &str, pk: &str) -> Option<AttributeValue> {
    org_shard(org_id, pk).map(AttributeValue::S)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_implicit_org_is_never_tagged() {
        assert_eq!(org_shard("", "agg#s00"), None);
    }

    #[test]
    fn a_tag_is_stable_and_names_one_of_the_orgs_shards() {
        let org = "0b7c5ab1-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
        let shards: Vec<String> = org_shards(org).collect();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..400 {
            let pk = format!("org#{org}#event#flow.end#c{i}");
            let tag = org_shard(org, &pk).expect("tagged");
            assert_eq!(org_shard(org, &pk).as_ref(), Some(&tag), "stable");
            assert!(shards.contains(&tag), "{tag} is one of the org's shards");
            seen.insert(tag);
        }
        assert_eq!(
            seen.len(),
            ORG_SHARDS as usize,
            "the keys spread over every shard"
        );
    }
}
