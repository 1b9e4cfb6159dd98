//! The DynamoDB store that counts each event exactly once.
//!
//! Layout (one table, key `pk`/`sk`, both strings):
//! - buckets: `pk = agg#s<shard, 2 digits>`, `sk = m#<minute start, epoch
//!   ms, 13 digits>#f#<flowId>` (a flow's counters) or `...#-` (counters of
//!   events without a flow), one number attribute per counter (see [`crate::kpi::attr`]).
//!   Each write picks one of [`BUCKET_SHARDS`] shards at random, so no item
//!   and no partition is hot: at most 1/16 of the load meets on one item, and
//!   a conflicting retry lands elsewhere. An event writes one bucket item:
//!   the org's figures are the sum of every cell, read back with one `Query`
//!   per shard (`sk BETWEEN`), in parallel, and merged.
//! - event markers: `pk = event#<content key>` (see
//!   `va_events::Event::content_key`), `sk = event`, the EventBridge id beside
//!   it, `ttl` past the longest time an event can come back.
//!
//! One concern a file:
//! - `keys`: the key layout, org prefixes and org tags;
//! - `write` and `transaction`: the exactly-once write path, and one
//!   transaction's items and how its cancellation is read;
//! - `cells`: what a plan adds to which cell;
//! - `pending`: conversation states and sessions waiting for enrichment;
//! - `names`: names admission and flow names;
//! - `rollup`: hour cells, sealed and rolled again when dirty;
//! - `read` and `rolled`: the read path, from minute cells and over roll-ups;
//! - `pages` and `accounting`: paged queries and what reads cost;
//! - `error`: what the store reports.

mod accounting;
mod cells;
mod error;
mod keys;
mod names;
mod pages;
mod pending;
mod read;
mod rolled;
mod rollup;
mod transaction;
mod write;

use aws_sdk_dynamodb::Client;

use crate::retention::Retention;

pub use accounting::ReadStats;
pub use cells::{batch_items, cells};
pub use error::AnalyticsError;
pub use keys::{ANALYTICS_TABLE, BUCKET_SHARDS, PENDING_PK, key, org_prefix};
pub use pending::StateRead;
pub use read::{Breakdown, Bucket};
pub use rollup::{LATE_AFTER_MS, RollReport, SEAL_AFTER_MS, late_hours};
pub use write::{Applied, MARKER_TTL_S};

use names::NameCache;

/// The analytics table, as one org sees it: every key it reads or writes
/// carries that org's [`org_prefix`].
#[derive(Debug, Clone)]
pub struct AnalyticsStore {
    client: Client,
    table: String,
    org_id: String,
    prefix: String,
    names: std::sync::Arc<std::sync::Mutex<NameCache>>,
    retention: Retention,
    layout: std::sync::Arc<crate::layout::LayoutGate>,
}

impl AnalyticsStore {
    /// The store in `table`, for the implicit org of a single-org deployment.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            org_id: String::new(),
            prefix: String::new(),
            names: std::sync::Arc::default(),
            retention: Retention::default(),
            layout: std::sync::Arc::default(),
        }
    }

    /// `Ok` when the table's layout is one this release knows: read once
    /// for this store and every org view of it ([`crate::layout`]).
    pub async fn check_layout(&self) -> Result<(), AnalyticsError> {
        self.layout.pass(self).await
    }

    /// The same store writing cells that live `retention`.
    pub fn with_retention(self, retention: Retention) -> Self {
        Self { retention, ..self }
    }

    /// The same table (and client) for `org_id`'s items.
    pub fn for_org(&self, org_id: &str) -> Self {
        Self {
            org_id: org_id.to_string(),
            prefix: org_prefix(org_id),
            ..self.clone()
        }
    }

    /// The org prefix of this store's keys (`""`: the implicit org).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The table's name.
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// A failed DynamoDB call as this store reports it.
    pub(crate) fn dynamodb(&self, op: &'static str, e: impl std::fmt::Display) -> AnalyticsError {
        AnalyticsError::DynamoDb {
            op,
            table: self.table.clone(),
            reason: e.to_string(),
        }
    }
}
