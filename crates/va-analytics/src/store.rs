//! The DynamoDB store that counts each event exactly once.
//!
//! Layout (one table, key `pk`/`sk`, both strings):
//! - buckets: `pk = agg#s<shard, 2 digits>`, `sk = m#<minute start, epoch
//!   ms, 13 digits>#f#<flowId>` (a flow's counters) or `...#-` (counters of
//!   events without a flow), one number attribute per counter (see [`attr`]).
//!   Each write picks one of [`BUCKET_SHARDS`] shards at random, so no item
//!   and no partition is hot: at most 1/16 of the load meets on one item, and
//!   a conflicting retry lands elsewhere. An event writes one bucket item:
//!   the org's figures are the sum of every cell, read back with one `Query`
//!   per shard (`sk BETWEEN`), in parallel, and merged.
//! - event markers: `pk = event#<content key>` (see
//!   `va_events::Event::content_key`), `sk = event`, the EventBridge id beside
//!   it, `ttl` past the longest time an event can come back.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde::Serialize;
use tokio::time::Instant;

use crate::kpi::{
    ConversationState, MAX_ACTIVE_MINUTES, MAX_NAMES_PER_FLOW_DAY, NameKind, OTHER_NAME,
    PendingEnrichment, Plan, Scope, active_from_spans, attr, minute_of, minute_sk,
};
use crate::org_items::{self, ORG_SHARD};
use crate::retention::Retention;

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
const STATE_SK: &str = "state";

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

fn pending_sk(p: &PendingEnrichment) -> String {
    format!(
        "{:013}#{}#{}",
        p.end_ms.max(0),
        p.conversation_id,
        p.session_key
    )
}

/// An hour is rolled up (its minute cells summed into hour cells) this long
/// after it starts: its last minute is then an hour old, and every session
/// that could still add to its `active` (at most 45 minutes long) has ended.
pub const SEAL_AFTER_MS: i64 = 2 * 3_600_000;
/// A write to a minute older than this (including the minutes a session's
/// span reaches back to) may land in a rolled hour: it marks the hour dirty,
/// in the same transaction, and the sweeper rolls it again. An hour's last
/// minute is 61 minutes old when it is sealed, so a write left unmarked
/// committed at least 11 minutes before the roll-up read (an invocation in
/// flight, clock skew).
pub const LATE_AFTER_MS: i64 = 50 * 60_000;
const HOUR_MS: i64 = 3_600_000;
// Sealing reads an hour only once every minute of it is older than the
// margin: no write lands in a sealed hour without marking it.
const _: () = assert!(SEAL_AFTER_MS - (HOUR_MS - 60_000) > LATE_AFTER_MS);
/// How far back a first roll-up goes: the longest range a dashboard reads
/// (31 whole days), plus the day it starts in.
const BACKFILL_MS: i64 = 32 * 24 * HOUR_MS;

/// How a `Query` pages, and whether it reads strongly consistent.
#[derive(Debug, Clone, Copy, Default)]
struct Read {
    page: Option<usize>,
    consistent: bool,
}

fn hour_of(minute_ms: i64) -> i64 {
    minute_ms - minute_ms.rem_euclid(HOUR_MS)
}

/// The hours a plan writes to that may already be rolled up.
pub fn late_hours(plan: &Plan, now_ms: i64) -> std::collections::BTreeSet<i64> {
    let mut hours = std::collections::BTreeSet::new();
    for ((_, minute), counters) in &plan.buckets {
        let reach = counters
            .keys()
            .filter_map(|k| k.strip_prefix(attr::SPAN_PREFIX)?.parse::<i64>().ok())
            .max()
            .unwrap_or(1)
            .clamp(1, MAX_ACTIVE_MINUTES);
        let first = minute.saturating_sub((reach - 1) * 60_000);
        let mut h = hour_of(first);
        while h <= *minute {
            // The youngest minute of this hour the write touches.
            let touched = (*minute).min(h + HOUR_MS - 60_000);
            if now_ms.saturating_sub(touched) > LATE_AFTER_MS {
                hours.insert(h);
            }
            h += HOUR_MS;
        }
    }
    hours
}

/// Shards of the bucket items. 16 keeps a flow at 2,000 events/s under
/// DynamoDB's 1,000 write units a second per partition and its conflict odds
/// per item low, while a read stays 16 parallel queries.
pub const BUCKET_SHARDS: u32 = 16;

/// Counters that belong to the org, not to a flow (the event itself): they
/// may ride in a flow's cell to save an item and are hidden from flow views.
const ORG_ONLY: [&str; 2] = [attr::EVENTS, attr::UNKNOWN_TOPICS];

fn cell_sk(minute_ms: i64, flow: Option<&str>) -> String {
    match flow {
        Some(f) => format!("{}#f#{f}", minute_sk(minute_ms)),
        None => format!("{}#-", minute_sk(minute_ms)),
    }
}

/// (minute start, flow) of a bucket item's sort key.
fn parse_cell_sk(sk: &str) -> Option<(i64, Option<String>)> {
    let rest = sk.strip_prefix("m#")?;
    let (minute, cell) = rest.split_once('#')?;
    let minute = minute.parse().ok()?;
    match cell {
        "-" => Some((minute, None)),
        c => Some((minute, Some(c.strip_prefix("f#")?.to_string()))),
    }
}

/// The bucket items a plan adds to: per minute, one cell per flow it
/// touches, the flow's counters in it; what the org gets beyond the sum of
/// its flows (the event's own count) rides in the flow's cell when the
/// minute has exactly one, else in the minute's flowless cell.
pub fn cells(plan: &Plan) -> BTreeMap<(i64, Option<String>), BTreeMap<String, i64>> {
    let mut out: BTreeMap<(i64, Option<String>), BTreeMap<String, i64>> = BTreeMap::new();
    let mut rest: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
    for ((scope, minute), counters) in &plan.buckets {
        match scope {
            Scope::Flow(f) => {
                let cell = out.entry((*minute, Some(f.clone()))).or_default();
                let org = rest.entry(*minute).or_default();
                for (name, n) in counters {
                    {
                        let e: &mut i64 = cell.entry(name.clone()).or_default();
                        *e = e.saturating_add(*n);
                    }
                    *org.entry(name.clone()).or_default() -= n;
                }
            }
            Scope::Org => {
                let org = rest.entry(*minute).or_default();
                for (name, n) in counters {
                    {
                        let e: &mut i64 = org.entry(name.clone()).or_default();
                        *e = e.saturating_add(*n);
                    }
                }
            }
        }
    }
    for (minute, mut counters) in rest {
        counters.retain(|_, n| *n != 0);
        if counters.is_empty() {
            continue;
        }
        let flows: Vec<_> = out
            .keys()
            .filter(|(m, f)| *m == minute && f.is_some())
            .cloned()
            .collect();
        // Only the org-only counters may ride in a flow's cell: flow views
        // hide exactly those.
        let rides = matches!(flows.as_slice(), [_])
            && counters.keys().all(|k| ORG_ONLY.contains(&k.as_str()));
        let target = match flows.as_slice() {
            [one] if rides => one.clone(),
            _ => (minute, None),
        };
        let cell = out.entry(target).or_default();
        for (name, n) in counters {
            {
                let e: &mut i64 = cell.entry(name).or_default();
                *e = e.saturating_add(n);
            }
        }
    }
    out
}

/// Items [`AnalyticsStore::apply_batch`] writes for `plans`: a marker and
/// pending enrichment each, their merged cells, and a dirty mark for every
/// hour they touch (counted as if all were late).
pub fn batch_items<'a>(plans: impl IntoIterator<Item = &'a Plan>) -> usize {
    let mut per_plan = 0;
    let mut merged = std::collections::BTreeSet::new();
    let mut hours = std::collections::BTreeSet::new();
    for p in plans {
        per_plan += 1 + usize::from(p.pending.is_some());
        merged.extend(cells(p).into_keys());
        // Every hour it touches might be late: the bound holds whenever it runs.
        hours.extend(late_hours(p, i64::MAX));
    }
    per_plan + merged.len() + hours.len()
}

/// A transaction DynamoDB refused for now, not for good: a conflict with
/// another transaction, or a throttle. `None` for anything else.
fn refusal(
    e: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
    >,
) -> Option<AnalyticsError> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    match e.as_service_error()? {
        E::TransactionCanceledException(c) => {
            let codes: Vec<&str> = c
                .cancellation_reasons()
                .iter()
                .filter_map(|r| r.code())
                .collect();
            if codes.contains(&"TransactionConflict") {
                Some(AnalyticsError::Conflict {
                    reason: "another transaction held an item".into(),
                })
            } else if codes.contains(&"ThrottlingError")
                || codes.contains(&"ProvisionedThroughputExceeded")
            {
                Some(AnalyticsError::Throttled {
                    reason: "an item of the transaction was throttled".into(),
                })
            } else {
                None
            }
        }
        E::ProvisionedThroughputExceededException(_)
        | E::ThrottlingException(_)
        | E::RequestLimitExceeded(_)
        | E::TransactionInProgressException(_) => Some(AnalyticsError::Throttled {
            reason: DisplayErrorContext(e).to_string(),
        }),
        _ => None,
    }
}

/// Which conversation a plan's state belongs to.
fn plan_conversation(plan: &Plan, resolves: Option<&PendingEnrichment>) -> Option<String> {
    plan.conversation_id
        .clone()
        .or_else(|| resolves.map(|p| p.conversation_id.clone()))
}

/// What each item of a transaction is, to read its cancellation reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Marker,
    State,
    Resolved,
    Other,
}

/// A conversation's state as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateRead {
    /// 0 when there is none yet.
    pub version: u64,
    /// The state (empty when none).
    pub state: ConversationState,
}

/// Whether an event was counted by this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// Counted now.
    Processed,
    /// Counted before (its marker exists).
    Duplicate,
    /// Not counted, on purpose: its org is offboarded (its data purged).
    Dropped,
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
    /// Another writer changed what this write depends on: read and plan again.
    #[error("write conflict: {reason}")]
    Conflict {
        /// What conflicted.
        reason: String,
    },
    /// DynamoDB throttled a write: retry after a pause.
    #[error("throttled: {reason}")]
    Throttled {
        /// What was throttled.
        reason: String,
    },
    /// The table holds a layout newer than this release knows
    /// ([`crate::layout`]): nothing is read or written.
    #[error(
        "the analytics table holds layout {found}, newer than this release knows ({known}): \
         deploy the release that upgraded it (CHANGELOG.md); this one does not write beside it"
    )]
    UnknownLayout {
        /// The table's layout.
        found: u32,
        /// This release's.
        known: u32,
    },
    /// A request this store refuses to make.
    #[error("invalid request: {reason}")]
    Invalid {
        /// Why.
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

impl AnalyticsError {
    /// A conflict or a throttle: the same write may succeed after a pause.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Conflict { .. } | Self::Throttled { .. })
    }

    /// The same request may succeed later (after the SDK's own retries):
    /// a conflict or a throttle, or DynamoDB failed on its side or did not
    /// answer. For reads and plain writes, which this store reports as
    /// `DynamoDb`, that is read from the SDK's error chain: the throttling
    /// codes, `InternalServerError`, `ServiceUnavailable`, a dispatch
    /// failure or a timeout. A validation error or an access denial is not.
    pub fn is_transient(&self) -> bool {
        const SIGNS: [&str; 9] = [
            "ProvisionedThroughputExceeded",
            "ThrottlingException",
            "RequestLimitExceeded",
            "TransactionConflict",
            "InternalServerError",
            "ServiceUnavailable",
            "dispatch failure",
            "timeout",
            "timed out",
        ];
        self.is_retryable()
            || matches!(self, Self::DynamoDb { reason, .. } if SIGNS.iter().any(|s| reason.contains(s)))
    }
}

/// One bucket as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Bucket {
    /// Minute start, epoch ms.
    pub minute_ms: i64,
    /// Counter name -> value.
    pub counters: BTreeMap<String, i64>,
}

/// Event markers' `ttl`: the DLQ keeps a failed event 14 days (the
/// template's `MessageRetentionPeriod`), so a redriven event must still find
/// its marker then; two days of margin.
pub const MARKER_TTL_S: i64 = 16 * 86_400;

/// Names this container knows the answer for: (kind, flow, day) -> name ->
/// admitted.
type NameCache = HashMap<(NameKind, String, i64), HashMap<String, bool>>;

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

    /// The org tag of the item in partition `pk` (see [`crate::org_items`]).
    fn tag(&self, pk: &str) -> Option<AttributeValue> {
        org_items::tag(&self.org_id, pk)
    }

    /// The org tag of `pk` as the start of an item (`None`: untagged).
    fn tagged_item(&self, pk: &str) -> Option<HashMap<String, AttributeValue>> {
        self.tag(pk)
            .map(|t| HashMap::from([(ORG_SHARD.to_string(), t)]))
    }

    /// `expr` (an update expression) that also sets the org tag of `pk`,
    /// and the tag's value; `expr` unchanged for the implicit org.
    fn tagged(&self, pk: &str, expr: &str) -> (String, Option<AttributeValue>) {
        match self.tag(pk) {
            None => (expr.to_string(), None),
            Some(t) if expr.contains("SET ") => {
                (format!("{expr}, #org_shard = :org_shard"), Some(t))
            }
            Some(t) => (format!("{expr} SET #org_shard = :org_shard"), Some(t)),
        }
    }

    /// The org prefix of this store's keys (`""`: the implicit org).
    pub fn prefix(&self) -> &str {
        &self.prefix
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

    /// The table's name.
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    fn flows_pk(&self) -> String {
        format!("{}flows", self.prefix)
    }

    /// Hour cells and the roll-up's state share this partition; only the
    /// sweeper writes it.
    fn hours_pk(&self) -> String {
        format!("{}hours", self.prefix)
    }

    /// Dirty marks, in 16 partitions like the cells: a backlog of late
    /// events spreads over them as its cell writes do.
    fn dirty_pk(&self, shard: u32) -> String {
        format!("{}dirty#s{shard:02}", self.prefix)
    }

    /// The mark a late write leaves on `hour`, in the shard of its cells.
    pub(crate) fn dirty_update(&self, hour: i64, shard: u32) -> Result<Update, String> {
        let pk = self.dirty_pk(shard);
        let (expr, tag) = self.tagged(&pk, "ADD #n :one");
        let update = Update::builder()
            .table_name(&self.table)
            .key(key::PK, AttributeValue::S(pk))
            .key(key::SK, AttributeValue::S(format!("h#{hour:013}")))
            .update_expression(expr)
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        match tag {
            Some(t) => update
                .expression_attribute_names("#org_shard", ORG_SHARD)
                .expression_attribute_values(":org_shard", t),
            None => update,
        }
        .build()
        .map_err(|e| e.to_string())
    }

    fn marker_pk(&self, marker: &str) -> String {
        format!("{}event#{marker}", self.prefix)
    }

    pub(crate) fn shard_pk(&self, shard: u32) -> String {
        format!("{}agg#s{shard:02}", self.prefix)
    }

    fn state_pk(&self, conversation_id: &str) -> String {
        format!("{}conv#{conversation_id}", self.prefix)
    }

    fn pending_pk(&self) -> String {
        format!("{}{PENDING_PK}", self.prefix)
    }

    /// The registry item of a flow's names for a day.
    fn names_key(&self, flow: &str, day: i64) -> (String, String) {
        (format!("{}names#{flow}", self.prefix), format!("d#{day}"))
    }

    /// Sends every name `plan` counts that its flow's registry for the day
    /// cannot take (full at [`MAX_NAMES_PER_FLOW_DAY`], or longer than
    /// [`va_events::MAX_NAME_BYTES`]) to [`OTHER_NAME`]. One conditional
    /// write per name new to this container; none once it is known.
    pub async fn admit_names(&self, plan: &mut Plan) -> Result<(), AnalyticsError> {
        for (kind, flow, minute, name) in plan.names() {
            let day = minute.div_euclid(86_400_000);
            let ok = name.len() <= va_events::MAX_NAME_BYTES
                && self.admit(kind, &flow, day, &name).await?;
            if !ok {
                plan.rename(kind, &name, OTHER_NAME);
            }
        }
        Ok(())
    }

    async fn admit(
        &self,
        kind: NameKind,
        flow: &str,
        day: i64,
        name: &str,
    ) -> Result<bool, AnalyticsError> {
        // The cache is shared by every org of the container: keyed by the item.
        let slot = (kind, self.names_key(flow, day).0, day);
        if let Some(known) = self
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&slot)
            .and_then(|m| m.get(name).copied())
        {
            return Ok(known);
        }
        let (pk, sk) = self.names_key(flow, day);
        let (expr, tag) = self.tagged(&pk, "ADD #set :one SET #ttl = :ttl");
        let update = match tag {
            Some(t) => self
                .client
                .update_item()
                .expression_attribute_names("#org_shard", ORG_SHARD)
                .expression_attribute_values(":org_shard", t),
            None => self.client.update_item(),
        };
        let r = update
            .table_name(&self.table)
            .key(key::PK, AttributeValue::S(pk))
            .key(key::SK, AttributeValue::S(sk))
            .update_expression(expr)
            .condition_expression(
                "attribute_not_exists(#set) OR size(#set) < :cap OR contains(#set, :name)",
            )
            .expression_attribute_names("#set", kind.attribute())
            .expression_attribute_names("#ttl", key::TTL)
            .expression_attribute_values(":one", AttributeValue::Ss(vec![name.to_string()]))
            .expression_attribute_values(":name", AttributeValue::S(name.to_string()))
            .expression_attribute_values(
                ":cap",
                AttributeValue::N(MAX_NAMES_PER_FLOW_DAY.to_string()),
            )
            .expression_attribute_values(
                ":ttl",
                AttributeValue::N(
                    day.saturating_add(MARKER_TTL_S / 86_400 + 2)
                        .saturating_mul(86_400)
                        .to_string(),
                ),
            )
            .send()
            .await;
        let admitted = match r {
            Ok(_) => true,
            Err(e) => {
                use aws_sdk_dynamodb::operation::update_item::UpdateItemError as E;
                match e.as_service_error() {
                    Some(E::ConditionalCheckFailedException(_)) => false,
                    Some(
                        E::ProvisionedThroughputExceededException(_)
                        | E::RequestLimitExceeded(_)
                        | E::TransactionConflictException(_),
                    ) => {
                        return Err(AnalyticsError::Throttled {
                            reason: DisplayErrorContext(e).to_string(),
                        });
                    }
                    _ => {
                        return Err(AnalyticsError::DynamoDb {
                            op: "UpdateItem (names)",
                            table: self.table.clone(),
                            reason: DisplayErrorContext(e).to_string(),
                        });
                    }
                }
            }
        };
        let mut cache = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache
            .entry(slot)
            .or_default()
            .insert(name.to_string(), admitted);
        Ok(admitted)
    }

    /// A conversation's state and its version (0: none yet). Strongly
    /// consistent: the version guards the write that follows.
    pub async fn read_state(&self, conversation_id: &str) -> Result<StateRead, AnalyticsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(key::PK, AttributeValue::S(self.state_pk(conversation_id)))
            .key(key::SK, AttributeValue::S(STATE_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.dynamodb("GetItem (state)", DisplayErrorContext(e)))?;
        let Some(item) = out.item() else {
            return Ok(StateRead::default());
        };
        let version = item
            .get(key::VERSION)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let state = item
            .get(key::STATE)
            .and_then(|v| v.as_s().ok())
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        Ok(StateRead { version, state })
    }

    /// Bot sessions waiting for enrichment that ended at or before
    /// `ended_by_ms`, oldest first, at most `limit`: one `Query` (paged).
    pub async fn pending(
        &self,
        ended_by_ms: i64,
        limit: usize,
    ) -> Result<Vec<PendingEnrichment>, AnalyticsError> {
        let mut out = Vec::new();
        let pk = self.pending_pk();
        self.each_item(
            "Query (pending)",
            &pk,
            "#sk <= :to",
            &[(":to", format!("{:013}~", ended_by_ms.max(0)))],
            Read {
                page: Some(limit),
                ..Read::default()
            },
            |item| {
                if let Some(p) = item
                    .get(key::PENDING)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|s| serde_json::from_str(s).ok())
                {
                    out.push(p);
                }
                out.len() < limit
            },
        )
        .await?;
        Ok(out)
    }

    /// Every item of partition `pk` whose sort key meets `sk_condition`
    /// (`#sk` and the `values` it names), in sort-key order, page by page,
    /// while `keep` returns true; `page` caps a page's size.
    async fn each_item(
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

    fn dynamodb(&self, op: &'static str, e: impl std::fmt::Display) -> AnalyticsError {
        AnalyticsError::DynamoDb {
            op,
            table: self.table.clone(),
            reason: e.to_string(),
        }
    }

    /// Everything `plan` changes in one `TransactWriteItems`, all or
    /// nothing: the marker (refused if it exists: a duplicate), the
    /// conversation's state (refused unless still at `state_version`), the
    /// pending enrichment it creates, the one it `resolves` (refused unless
    /// still there), and every bucket update.
    pub async fn apply(
        &self,
        plan: &Plan,
        now_ms: i64,
        state_version: u64,
        resolves: Option<&PendingEnrichment>,
    ) -> Result<Applied, AnalyticsError> {
        let err = |reason: String| self.dynamodb("TransactWriteItems", reason);
        let s = |v: String| AttributeValue::S(v);
        let n = |v: i64| AttributeValue::N(v.to_string());
        let ttl = now_ms / 1000 + MARKER_TTL_S;
        let mut items = Vec::new();
        // Index 0: the marker. Its refusal means "counted before".
        items.push(Slot::Marker);
        let marker = self.marker_put(plan, now_ms, ttl).map_err(err)?;
        let mut tx = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(marker).build());
        if let (Some(state), Some(conversation_id)) =
            (&plan.state, plan_conversation(plan, resolves))
        {
            let json = serde_json::to_string(state).map_err(|e| err(e.to_string()))?;
            let pk = self.state_pk(&conversation_id);
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(self.tagged_item(&pk))
                .item(key::PK, s(pk))
                .item(key::SK, s(STATE_SK.into()))
                .item(key::STATE, s(json))
                .item(
                    key::VERSION,
                    n(i64::try_from(state_version)
                        .unwrap_or(i64::MAX)
                        .saturating_add(1)),
                )
                .item(key::TTL, n(ttl));
            // First writer: the item must not exist; later: still at the version read.
            let put = if state_version == 0 {
                put.condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", key::PK)
            } else {
                put.condition_expression("#version = :version")
                    .expression_attribute_names("#version", key::VERSION)
                    .expression_attribute_values(
                        ":version",
                        n(i64::try_from(state_version).unwrap_or(i64::MAX)),
                    )
            };
            let put = put.build().map_err(|e| err(e.to_string()))?;
            items.push(Slot::State);
            tx = tx.transact_items(TransactWriteItem::builder().put(put).build());
        }
        if let Some(p) = &plan.pending {
            let put = self.pending_put(p, ttl).map_err(err)?;
            items.push(Slot::Other);
            tx = tx.transact_items(TransactWriteItem::builder().put(put).build());
        }
        if let Some(p) = resolves {
            let delete = Delete::builder()
                .table_name(&self.table)
                .key(key::PK, s(self.pending_pk()))
                .key(key::SK, s(pending_sk(p)))
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", key::PK)
                .build()
                .map_err(|e| err(e.to_string()))?;
            items.push(Slot::Resolved);
            tx = tx.transact_items(TransactWriteItem::builder().delete(delete).build());
        }
        let shard_index = rand::random_range(0..BUCKET_SHARDS);
        let shard = self.shard_pk(shard_index);
        for ((minute, flow), counters) in cells(plan) {
            let update = self
                .cell_update(&shard, minute, flow.as_deref(), &counters)
                .map_err(err)?;
            items.push(Slot::Other);
            tx = tx.transact_items(TransactWriteItem::builder().update(update).build());
        }
        for hour in late_hours(plan, now_ms) {
            items.push(Slot::Other);
            tx = tx.transact_items(
                TransactWriteItem::builder()
                    .update(self.dirty_update(hour, shard_index).map_err(err)?)
                    .build(),
            );
        }
        if items.len() > 100 {
            return Err(AnalyticsError::TooLarge {
                event_id: plan.event_id.clone(),
                items: items.len(),
            });
        }
        match tx.send().await {
            Ok(_) => Ok(Applied::Processed),
            Err(e) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
                if let Some(TransactWriteItemsError::TransactionCanceledException(c)) =
                    e.as_service_error()
                {
                    let reasons: Vec<Option<&str>> =
                        c.cancellation_reasons().iter().map(|r| r.code()).collect();
                    let failed = |slot: Slot| {
                        items
                            .iter()
                            .zip(&reasons)
                            .any(|(s, r)| *s == slot && *r == Some("ConditionalCheckFailed"))
                    };
                    if failed(Slot::Marker) || failed(Slot::Resolved) {
                        return Ok(Applied::Duplicate);
                    }
                    if failed(Slot::State) {
                        return Err(AnalyticsError::Conflict {
                            reason: "the conversation's state changed since it was read".into(),
                        });
                    }
                }
                Err(refusal(&e).unwrap_or_else(|| err(DisplayErrorContext(e).to_string())))
            }
        }
    }

    /// Stateless plans (no conversation state, nothing resolved) in one
    /// `TransactWriteItems`: each plan's marker and pending enrichment, and
    /// their bucket deltas merged into as few cells as possible. A marker
    /// that exists makes its plan a duplicate: it is left out and the rest
    /// is written again. Returns, per plan, whether it was counted now.
    /// The caller keeps the items within 100 ([`batch_items`]).
    pub async fn apply_batch(
        &self,
        plans: &[Plan],
        now_ms: i64,
    ) -> Result<Vec<Applied>, AnalyticsError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let err = |reason: String| self.dynamodb("TransactWriteItems (batch)", reason);
        let ttl = now_ms / 1000 + MARKER_TTL_S;
        let mut out = vec![Applied::Duplicate; plans.len()];
        // The same content twice in one batch is one event.
        let mut seen = std::collections::BTreeSet::new();
        let mut live: Vec<usize> = (0..plans.len())
            .filter(|&i| seen.insert(plans[i].marker.clone()))
            .collect();
        loop {
            if live.is_empty() {
                return Ok(out);
            }
            let mut markers = Vec::new();
            let mut tx = self.client.transact_write_items();
            let mut count = 0usize;
            for &i in &live {
                let plan = &plans[i];
                let marker = self.marker_put(plan, now_ms, ttl).map_err(&err)?;
                markers.push((count, i));
                count += 1;
                tx = tx.transact_items(TransactWriteItem::builder().put(marker).build());
                if let Some(p) = &plan.pending {
                    tx = tx.transact_items(
                        TransactWriteItem::builder()
                            .put(self.pending_put(p, ttl).map_err(&err)?)
                            .build(),
                    );
                    count += 1;
                }
            }
            let mut merged: BTreeMap<(i64, Option<String>), BTreeMap<String, i64>> =
                BTreeMap::new();
            for &i in &live {
                for (cell, counters) in cells(&plans[i]) {
                    let into = merged.entry(cell).or_default();
                    for (name, d) in counters {
                        {
                            let e: &mut i64 = into.entry(name).or_default();
                            *e = e.saturating_add(d);
                        }
                    }
                }
            }
            let shard_index = rand::random_range(0..BUCKET_SHARDS);
            let shard = self.shard_pk(shard_index);
            for ((minute, flow), mut counters) in merged {
                counters.retain(|_, d| *d != 0);
                if counters.is_empty() {
                    continue;
                }
                let update = self
                    .cell_update(&shard, minute, flow.as_deref(), &counters)
                    .map_err(&err)?;
                count += 1;
                tx = tx.transact_items(TransactWriteItem::builder().update(update).build());
            }
            let late: std::collections::BTreeSet<i64> = live
                .iter()
                .flat_map(|&i| late_hours(&plans[i], now_ms))
                .collect();
            for hour in late {
                count += 1;
                tx = tx.transact_items(
                    TransactWriteItem::builder()
                        .update(self.dirty_update(hour, shard_index).map_err(&err)?)
                        .build(),
                );
            }
            if count > 100 {
                return Err(AnalyticsError::TooLarge {
                    event_id: plans[live[0]].event_id.clone(),
                    items: count,
                });
            }
            match tx.send().await {
                Ok(_) => {
                    for &i in &live {
                        out[i] = Applied::Processed;
                    }
                    return Ok(out);
                }
                Err(e) => {
                    if let Some(TransactWriteItemsError::TransactionCanceledException(c)) =
                        e.as_service_error()
                    {
                        let reasons: Vec<Option<&str>> =
                            c.cancellation_reasons().iter().map(|r| r.code()).collect();
                        let duplicates: Vec<usize> = markers
                            .iter()
                            .filter(|(at, _)| {
                                reasons.get(*at).copied().flatten()
                                    == Some("ConditionalCheckFailed")
                            })
                            .map(|(_, i)| *i)
                            .collect();
                        if !duplicates.is_empty() {
                            live.retain(|i| !duplicates.contains(i));
                            continue;
                        }
                    }
                    return Err(
                        refusal(&e).unwrap_or_else(|| err(DisplayErrorContext(e).to_string()))
                    );
                }
            }
        }
    }

    /// The event's marker: refused if it exists (counted before).
    fn marker_put(&self, plan: &Plan, now_ms: i64, ttl: i64) -> Result<Put, String> {
        let pk = self.marker_pk(&plan.marker);
        Put::builder()
            .table_name(&self.table)
            .set_item(self.tagged_item(&pk))
            .item(key::PK, AttributeValue::S(pk))
            .item(key::SK, AttributeValue::S("event".into()))
            .item(
                key::EVENTBRIDGE_ID,
                AttributeValue::S(plan.event_id.clone()),
            )
            .item(key::AT, AttributeValue::N(now_ms.to_string()))
            .item(key::TTL, AttributeValue::N(ttl.to_string()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", key::PK)
            .build()
            .map_err(|e| e.to_string())
    }

    fn pending_put(&self, p: &PendingEnrichment, ttl: i64) -> Result<Put, String> {
        let json = serde_json::to_string(p).map_err(|e| e.to_string())?;
        let pk = self.pending_pk();
        Put::builder()
            .table_name(&self.table)
            .set_item(self.tagged_item(&pk))
            .item(key::PK, AttributeValue::S(pk))
            .item(key::SK, AttributeValue::S(pending_sk(p)))
            .item(key::PENDING, AttributeValue::S(json))
            .item(key::TTL, AttributeValue::N(ttl.to_string()))
            .build()
            .map_err(|e| e.to_string())
    }

    pub(crate) fn cell_update(
        &self,
        shard: &str,
        minute: i64,
        flow: Option<&str>,
        counters: &BTreeMap<String, i64>,
    ) -> Result<Update, String> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut adds = Vec::new();
        for (i, (name, delta)) in counters.iter().enumerate() {
            names.insert(format!("#a{i}"), name.clone());
            values.insert(format!(":v{i}"), AttributeValue::N(delta.to_string()));
            adds.push(format!("#a{i} :v{i}"));
        }
        // The same `ttl` on every update of the cell (crate::retention).
        names.insert("#ttl".into(), key::TTL.into());
        values.insert(
            ":ttl".into(),
            AttributeValue::N(self.retention.minute_cell_ttl(minute).to_string()),
        );
        let (expr, tag) = self.tagged(shard, &format!("ADD {} SET #ttl = :ttl", adds.join(", ")));
        if let Some(t) = tag {
            names.insert("#org_shard".into(), ORG_SHARD.into());
            values.insert(":org_shard".into(), t);
        }
        Update::builder()
            .table_name(&self.table)
            .key(key::PK, AttributeValue::S(shard.to_string()))
            .key(key::SK, AttributeValue::S(cell_sk(minute, flow)))
            .update_expression(expr)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(|e| e.to_string())
    }

    /// Buckets of one scope with `from_ms <= minute <= to_ms`, "active"
    /// derived from the sessions that ended up to [`MAX_ACTIVE_MINUTES`]
    /// later: one `Query` per shard, in parallel (paged), merged.
    pub async fn query(
        &self,
        scope: &Scope,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Bucket>, AnalyticsError> {
        Ok(self.query_breakdown(scope, from_ms, to_ms).await?.buckets)
    }

    /// [`Self::query`], and from the same reads each flow's totals over the
    /// range and what the reads cost.
    pub async fn query_breakdown(
        &self,
        scope: &Scope,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Breakdown, AnalyticsError> {
        let (from, to) = (minute_of(from_ms), minute_of(to_ms));
        let read_to = to.saturating_add((MAX_ACTIVE_MINUTES - 1) * 60_000);
        let (cells, stats) = self.minute_cells(from, read_to, false).await?;
        let flow = match scope {
            Scope::Org => None,
            Scope::Flow(f) => Some(f.as_str()),
        };
        let mut merged: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
        let mut flows: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        let org_only = |k: &str| ORG_ONLY.contains(&k);
        for ((minute, cell_flow), counters) in &cells {
            if let Some(f) = cell_flow
                && (from..=to).contains(minute)
            {
                for (k, n) in counters {
                    if !k.starts_with(attr::SPAN_PREFIX) && !org_only(k) {
                        let totals = flows.entry(f.clone()).or_default();
                        let e: &mut i64 = totals.entry(k.clone()).or_default();
                        *e = e.saturating_add(*n);
                    }
                }
            }
            if flow.is_some() && cell_flow.as_deref() != flow {
                continue;
            }
            let into = merged.entry(*minute).or_default();
            for (k, n) in counters {
                if flow.is_none() || !org_only(k) {
                    let e: &mut i64 = into.entry(k.clone()).or_default();
                    *e = e.saturating_add(*n);
                }
            }
        }
        let active = active_from_spans(&merged);
        let mut out: BTreeMap<i64, BTreeMap<String, i64>> = merged
            .into_iter()
            .filter(|(m, _)| (from..=to).contains(m))
            .map(|(m, mut c)| {
                c.retain(|name, _| !name.starts_with(attr::SPAN_PREFIX));
                (m, c)
            })
            .collect();
        for (m, n) in active.range(from..=to) {
            out.entry(*m).or_default().insert(attr::ACTIVE.into(), *n);
        }
        Ok(Breakdown::new(out, flows, stats))
    }

    /// Flow names the sweeper resolved, by flow id: one `Query`.
    pub async fn flow_names(
        &self,
    ) -> Result<(BTreeMap<String, String>, ReadStats), AnalyticsError> {
        let mut names = BTreeMap::new();
        let pk = self.flows_pk();
        let stats = self
            .each_item(
                "Query (flow names)",
                &pk,
                "#sk >= :from",
                &[(":from", "0".to_string())],
                Read::default(),
                |item| {
                    if let (Some(id), Some(name)) = (
                        item.get(key::SK).and_then(|v| v.as_s().ok()),
                        item.get(key::NAME).and_then(|v| v.as_s().ok()),
                    ) {
                        names.insert(id.clone(), name.clone());
                    }
                    true
                },
            )
            .await?;
        Ok((names, stats))
    }

    /// Records a flow's name (from `GET /api/v2/flows/{flowId}`).
    pub async fn put_flow_name(
        &self,
        flow_id: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<(), AnalyticsError> {
        let pk = self.flows_pk();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(self.tagged_item(&pk))
            .item(key::PK, AttributeValue::S(pk))
            .item(key::SK, AttributeValue::S(flow_id.to_string()))
            .item(key::NAME, AttributeValue::S(name.to_string()))
            .item(key::AT, AttributeValue::N(now_ms.to_string()))
            .send()
            .await
            .map_err(|e| self.dynamodb("PutItem (flow name)", DisplayErrorContext(e)))?;
        Ok(())
    }
}

/// What a roll-up did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RollReport {
    /// Hours rolled up for the first time (sealed, or backfilled).
    pub sealed: usize,
    /// Dirty hours rolled again.
    pub rerolled: usize,
    /// The last hour rolled up, epoch ms.
    pub rolled_to: Option<i64>,
}

impl AnalyticsStore {
    /// Rolls up every sealed hour not rolled yet, then works back to the
    /// oldest cell (at most 32 days) until that is done (at most `max_hours`
    /// hours, each saved as it is done, none begun after `deadline`), and
    /// rolls again up to `max_hours` dirty ones: each hour's minute cells,
    /// read strongly consistent, summed over shards into one cell per flow
    /// and one for the rest, `active` as the peak minute. Idempotent: a
    /// roll-up overwrites the hour's cells. One writer at a time (the
    /// sweeper runs under [`crate::SweepLease`]).
    pub async fn roll_up(
        &self,
        now_ms: i64,
        max_hours: usize,
        deadline: Instant,
    ) -> Result<RollReport, AnalyticsError> {
        let mut report = RollReport::default();
        let state = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(key::PK, AttributeValue::S(self.hours_pk()))
            .key(key::SK, AttributeValue::S("state".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.dynamodb("GetItem (roll-up state)", DisplayErrorContext(e)))?;
        let number = |k: &str| {
            state
                .item()
                .and_then(|i| i.get(k))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
        };
        let last_sealed = hour_of(now_ms.saturating_sub(SEAL_AFTER_MS));
        let (mut from, mut to) = match (number("rolled_from"), number("rolled_to")) {
            (Some(f), Some(t)) => (f, t),
            // A first run starts at the last sealed hour and works back.
            _ => (last_sealed + HOUR_MS, last_sealed),
        };
        let mut backfilled = state
            .item()
            .and_then(|i| i.get("backfilled"))
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false);
        // A first run saves its start before anything else.
        if number("rolled_to").is_none() {
            self.save_roll_state(from, to, backfilled).await?;
        }
        // Each hour's progress is saved at once: a sweep cut short keeps it.
        let budget = |report: &RollReport| report.sealed < max_hours && Instant::now() < deadline;
        // Forward: every hour sealed since the last run.
        while to < last_sealed && budget(&report) {
            self.roll_hour(to + HOUR_MS).await?;
            to += HOUR_MS;
            report.sealed += 1;
            self.save_roll_state(from, to, backfilled).await?;
        }
        // Backward, with what is left: down to the oldest minute cell, at
        // most as far as the longest range a dashboard reads. Until then
        // the older hours are read from minute cells.
        if !backfilled && budget(&report) {
            let floor = match self.first_minute().await? {
                Some(m) => hour_of(m).max(hour_of(now_ms - BACKFILL_MS)),
                None => from,
            };
            while from > floor && budget(&report) {
                self.roll_hour(from - HOUR_MS).await?;
                from -= HOUR_MS;
                report.sealed += 1;
                self.save_roll_state(from, to, false).await?;
            }
            if from <= floor {
                backfilled = true;
                self.save_roll_state(from, to, backfilled).await?;
            }
        }
        let last = (from <= to).then_some(to);
        report.rolled_to = last;
        // Marks read after sealing: an hour sealed above and written late
        // since is rolled again here.
        for (dirty, marks) in self.dirty_hours(true).await?.0 {
            // Outside the rolled hours a mark means nothing: those hours are
            // read from minute cells, and sealing reads them consistently.
            let rolled = (from..=to).contains(&dirty);
            if rolled {
                if report.rerolled >= max_hours || Instant::now() >= deadline {
                    break;
                }
                self.roll_hour(dirty).await?;
                report.rerolled += 1;
            }
            for (shard, n) in marks {
                // Gone only if no write marked it again meanwhile.
                let r = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .key(key::PK, AttributeValue::S(self.dirty_pk(shard)))
                    .key(key::SK, AttributeValue::S(format!("h#{dirty:013}")))
                    .condition_expression("#n = :n")
                    .expression_attribute_names("#n", "n")
                    .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
                    .send()
                    .await;
                use aws_sdk_dynamodb::operation::delete_item::DeleteItemError as E;
                // Marked again, or a late write holds it right now: it stays
                // for the next sweep.
                if let Err(e) = r
                    && !matches!(
                        e.as_service_error(),
                        Some(
                            E::ConditionalCheckFailedException(_)
                                | E::TransactionConflictException(_)
                        )
                    )
                {
                    return Err(self.dynamodb("DeleteItem (dirty hour)", DisplayErrorContext(e)));
                }
            }
        }
        Ok(report)
    }

    async fn save_roll_state(
        &self,
        from: i64,
        to: i64,
        backfilled: bool,
    ) -> Result<(), AnalyticsError> {
        let pk = self.hours_pk();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(self.tagged_item(&pk))
            .item(key::PK, AttributeValue::S(pk))
            .item(key::SK, AttributeValue::S("state".into()))
            .item("rolled_to", AttributeValue::N(to.to_string()))
            .item("rolled_from", AttributeValue::N(from.to_string()))
            .item("backfilled", AttributeValue::Bool(backfilled))
            .send()
            .await
            .map_err(|e| self.dynamodb("PutItem (roll-up state)", DisplayErrorContext(e)))?;
        Ok(())
    }

    /// The oldest minute any cell holds (one single-item `Query` a shard).
    async fn first_minute(&self) -> Result<Option<i64>, AnalyticsError> {
        let mut first: Option<i64> = None;
        for shard in 0..BUCKET_SHARDS {
            self.each_item(
                "Query (oldest cell)",
                &self.shard_pk(shard),
                "begins_with(#sk, :m)",
                &[(":m", "m#".to_string())],
                Read {
                    page: Some(1),
                    consistent: true,
                },
                |item| {
                    if let Some((m, _)) = item
                        .get(key::SK)
                        .and_then(|v| v.as_s().ok())
                        .and_then(|sk| parse_cell_sk(sk))
                    {
                        first = Some(first.map_or(m, |f| f.min(m)));
                    }
                    false
                },
            )
            .await?;
        }
        Ok(first)
    }

    /// Dirty hours and their marks (shard, count), and what reading them
    /// cost: one `Query` per mark partition, in parallel.
    async fn dirty_hours(
        &self,
        consistent: bool,
    ) -> Result<(BTreeMap<i64, Vec<(u32, i64)>>, ReadStats), AnalyticsError> {
        let reads = (0..BUCKET_SHARDS).map(|shard| async move {
            let mut marks = Vec::new();
            self.each_item(
                "Query (dirty marks)",
                &self.dirty_pk(shard),
                "begins_with(#sk, :h)",
                &[(":h", "h#".to_string())],
                Read {
                    consistent,
                    ..Read::default()
                },
                |item| {
                    let hour = item
                        .get(key::SK)
                        .and_then(|v| v.as_s().ok())
                        .and_then(|sk| sk.strip_prefix("h#")?.parse::<i64>().ok());
                    let n = item
                        .get("n")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|n| n.parse::<i64>().ok());
                    if let (Some(hour), Some(n)) = (hour, n) {
                        marks.push((hour, shard, n));
                    }
                    true
                },
            )
            .await
            .map(|stats| (marks, stats))
        });
        let mut out: BTreeMap<i64, Vec<(u32, i64)>> = BTreeMap::new();
        let mut stats = ReadStats::default();
        for shard in futures::future::join_all(reads).await {
            let (marks, s) = shard?;
            stats.merge(&s);
            for (hour, shard, n) in marks {
                out.entry(hour).or_default().push((shard, n));
            }
        }
        Ok((out, stats))
    }

    /// Every shard's minute cells from `from` to `to` (minute starts), each
    /// with its numbers only (a long range holds many cells): one `Query`
    /// per shard, in parallel.
    async fn minute_cells(
        &self,
        from: i64,
        to: i64,
        consistent: bool,
    ) -> Result<(MinuteCells, ReadStats), AnalyticsError> {
        let reads = (0..BUCKET_SHARDS).map(|shard| async move {
            let mut cells = Vec::new();
            self.each_item(
                "Query (buckets)",
                &self.shard_pk(shard),
                "#sk BETWEEN :from AND :to",
                &[
                    (":from", minute_sk(from)),
                    (":to", format!("{}#~", minute_sk(to))),
                ],
                Read {
                    consistent,
                    ..Read::default()
                },
                |item| {
                    if let Some(sk) = item.get(key::SK).and_then(|v| v.as_s().ok())
                        && let Some(cell) = parse_cell_sk(sk)
                    {
                        let counters: Vec<(String, i64)> =
                            numbers(item).map(|(k, n)| (k.clone(), n)).collect();
                        cells.push((cell, counters));
                    }
                    true
                },
            )
            .await
            .map(|stats| (cells, stats))
        });
        let mut cells = Vec::new();
        let mut stats = ReadStats::default();
        for shard in futures::future::join_all(reads).await {
            let (c, s) = shard?;
            cells.extend(c);
            stats.merge(&s);
        }
        Ok((cells, stats))
    }

    /// One hour's roll-up cells, from its minute cells (and the 44 minutes
    /// after it, for `active`).
    async fn roll_hour(&self, hour: i64) -> Result<(), AnalyticsError> {
        let last_minute = hour + HOUR_MS - 60_000;
        let read_to = last_minute + (MAX_ACTIVE_MINUTES - 1) * 60_000;
        let mut per_flow: BTreeMap<Option<String>, BTreeMap<i64, BTreeMap<String, i64>>> =
            BTreeMap::new();
        for ((minute, flow), counters) in self.minute_cells(hour, read_to, true).await?.0 {
            let m = per_flow.entry(flow).or_default().entry(minute).or_default();
            for (k, n) in counters {
                let e: &mut i64 = m.entry(k).or_default();
                *e = e.saturating_add(n);
            }
        }
        let mut org: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
        let mut cells: Vec<(Option<String>, BTreeMap<String, i64>)> = Vec::new();
        for (flow, minutes) in &per_flow {
            for (m, c) in minutes {
                let into = org.entry(*m).or_default();
                for (k, n) in c {
                    let e: &mut i64 = into.entry(k.clone()).or_default();
                    *e = e.saturating_add(*n);
                }
            }
            let mut sums: BTreeMap<String, i64> = BTreeMap::new();
            for (_, c) in minutes.range(hour..=last_minute) {
                for (k, n) in c {
                    if !k.starts_with(attr::SPAN_PREFIX) {
                        let e: &mut i64 = sums.entry(k.clone()).or_default();
                        *e = e.saturating_add(*n);
                    }
                }
            }
            if flow.is_some() {
                let peak = active_from_spans(minutes)
                    .range(hour..=last_minute)
                    .map(|(_, n)| *n)
                    .max()
                    .unwrap_or(0);
                if peak > 0 {
                    sums.insert(attr::ACTIVE.into(), peak);
                }
            }
            cells.push((flow.clone(), sums));
        }
        let org_peak = active_from_spans(&org)
            .range(hour..=last_minute)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0);
        // As minute reads do: no `active` in an hour nobody was in.
        if org_peak > 0 {
            match cells.iter_mut().find(|(f, _)| f.is_none()) {
                Some((_, c)) => {
                    c.insert(ORG_ACTIVE.into(), org_peak);
                }
                None => cells.push((None, BTreeMap::from([(ORG_ACTIVE.to_string(), org_peak)]))),
            }
        }
        for (flow, counters) in cells {
            // A flow seen only after the hour (its `active` reach) has no cell.
            if counters.is_empty() {
                continue;
            }
            let sk = match &flow {
                Some(f) => format!("h#{hour:013}#f#{f}"),
                None => format!("h#{hour:013}#-"),
            };
            let mut item: HashMap<String, AttributeValue> = counters
                .into_iter()
                .map(|(k, n)| (k, AttributeValue::N(n.to_string())))
                .collect();
            item.extend(self.tagged_item(&self.hours_pk()).unwrap_or_default());
            item.insert(
                key::TTL.into(),
                AttributeValue::N(self.retention.hour_cell_ttl(hour).to_string()),
            );
            item.insert(key::PK.into(), AttributeValue::S(self.hours_pk()));
            item.insert(key::SK.into(), AttributeValue::S(sk));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|e| self.dynamodb("PutItem (hour cell)", DisplayErrorContext(e)))?;
        }
        Ok(())
    }
}

impl AnalyticsStore {
    /// [`Self::query_breakdown`] with whole rolled-up hours read from their
    /// hour cells (one `Query`) and only the rest (edge hours, the hours
    /// not rolled up yet, dirty ones) from minute cells. Buckets of rolled
    /// hours start at the hour and carry its sums (`active`: its peak).
    pub async fn query_rolled(
        &self,
        scope: &Scope,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Breakdown, AnalyticsError> {
        let (from, to) = (minute_of(from_ms), minute_of(to_ms));
        let pk = self.hours_pk();
        let mut reads = ReadStats::default();
        let mut span = None;
        reads.merge(
            &self
                .each_item(
                    "Query (roll-up state)",
                    &pk,
                    "#sk = :s",
                    &[(":s", "state".into())],
                    Read {
                        consistent: true,
                        ..Read::default()
                    },
                    |item| {
                        let n = |k: &str| {
                            item.get(k)
                                .and_then(|v| v.as_n().ok())
                                .and_then(|n| n.parse::<i64>().ok())
                        };
                        span = n("rolled_from").zip(n("rolled_to"));
                        true
                    },
                )
                .await?,
        );
        // A mark read late only sends an hour to its minute cells.
        let (marks, mark_reads) = self.dirty_hours(false).await?;
        reads.merge(&mark_reads);
        let dirty: std::collections::BTreeSet<i64> = marks.into_keys().collect();
        let mut rolled: std::collections::BTreeSet<i64> = match span {
            None => Default::default(),
            Some((first_rolled, r)) => {
                let mut h = hour_of(from);
                let mut out = std::collections::BTreeSet::new();
                while h <= to {
                    if h >= from
                        && h + HOUR_MS - 60_000 <= to
                        && (first_rolled..=r).contains(&h)
                        && !dirty.contains(&h)
                    {
                        out.insert(h);
                    }
                    h += HOUR_MS;
                }
                out
            }
        };
        // The rest from minute cells: the stretches between rolled hours.
        // Past a few (many dirty hours), the last one runs to the end of the
        // range, so the queries stay bounded.
        let mut stretches: Vec<(i64, i64)> = Vec::new();
        let mut m = from;
        while m <= to {
            if rolled.contains(&hour_of(m)) {
                m = hour_of(m) + HOUR_MS;
                continue;
            }
            if stretches.len() + 1 == MAX_STRETCHES {
                rolled.retain(|h| *h < m);
                stretches.push((m, to));
                break;
            }
            let end = rolled
                .range(m..)
                .next()
                .map_or(to, |h| (h - 60_000).min(to));
            stretches.push((m, end));
            m = end + 60_000;
        }
        let mut buckets: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
        let mut flows: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        if let (Some(first), Some(last)) = (rolled.first(), rolled.last()) {
            let want = match scope {
                Scope::Org => None,
                Scope::Flow(f) => Some(f.as_str()),
            };
            reads.merge(
                &self
                    .each_item(
                        "Query (hour cells)",
                        &pk,
                        "#sk BETWEEN :from AND :to",
                        &[
                            (":from", format!("h#{first:013}")),
                            (":to", format!("h#{last:013}#~")),
                        ],
                        // Strongly consistent: a re-roll writes the cells
                        // before it deletes the mark, so an answer that no
                        // longer sees the mark sees the new cells.
                        Read {
                            consistent: true,
                            ..Read::default()
                        },
                        |item| {
                            let Some((hour, flow)) = item
                                .get(key::SK)
                                .and_then(|v| v.as_s().ok())
                                .and_then(|sk| sk.strip_prefix("h#"))
                                .and_then(|rest| parse_cell_sk(&format!("m#{rest}")))
                            else {
                                return true;
                            };
                            if !rolled.contains(&hour) {
                                return true;
                            }
                            if let Some(f) = &flow {
                                // A cell with only `active` (a session seen
                                // in the next hour) adds no row, as in minutes.
                                for (k, n) in numbers(item) {
                                    if k != attr::ACTIVE && !ORG_ONLY.contains(&k.as_str()) {
                                        let t = flows.entry(f.clone()).or_default();
                                        let e: &mut i64 = t.entry(k.clone()).or_default();
                                        *e = e.saturating_add(n);
                                    }
                                }
                            }
                            let counts = match (want, flow.as_deref()) {
                                (None, _) => true,
                                (Some(w), Some(f)) => w == f,
                                (Some(_), None) => false,
                            };
                            if counts {
                                let b = buckets.entry(hour).or_default();
                                for (k, n) in numbers(item) {
                                    if want.is_some() && ORG_ONLY.contains(&k.as_str()) {
                                        continue;
                                    }
                                    let name = match (want, k.as_str()) {
                                        (None, attr::ACTIVE) => continue,
                                        (None, ORG_ACTIVE) => attr::ACTIVE,
                                        (Some(_), ORG_ACTIVE) => continue,
                                        (_, other) => other,
                                    };
                                    let e: &mut i64 = b.entry(name.to_string()).or_default();
                                    *e = if name == attr::ACTIVE {
                                        (*e).max(n)
                                    } else {
                                        e.saturating_add(n)
                                    };
                                }
                            }
                            true
                        },
                    )
                    .await?,
            );
        }
        for (a, b) in stretches {
            let part = self.query_breakdown(scope, a, b).await?;
            reads.merge(&part.reads);
            for bucket in part.buckets {
                buckets.insert(bucket.minute_ms, bucket.counters);
            }
            for (f, t) in part.flows {
                let into = flows.entry(f).or_default();
                for (k, n) in t {
                    let e: &mut i64 = into.entry(k).or_default();
                    *e = e.saturating_add(n);
                }
            }
        }
        Ok(Breakdown::new(buckets, flows, reads))
    }
}

/// Minute cells as read: (minute, flow) and the cell's numbers.
type MinuteCells = Vec<((i64, Option<String>), Vec<(String, i64)>)>;

/// At most this many stretches of minute cells in a rolled read (16 queries
/// each): the range's head, its tail, and two dirty hours between.
const MAX_STRETCHES: usize = 4;

/// The org's peak `active` in an hour cell (flows' `active` are their own).
const ORG_ACTIVE: &str = "active_org";

/// One range's buckets, each flow's totals, and the cost of reading them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Breakdown {
    /// The scope's buckets, per minute.
    pub buckets: Vec<Bucket>,
    /// Per flow id: its counters summed over the range.
    pub flows: BTreeMap<String, BTreeMap<String, i64>>,
    /// What the reads cost.
    pub reads: ReadStats,
}

impl Breakdown {
    fn new(
        buckets: BTreeMap<i64, BTreeMap<String, i64>>,
        flows: BTreeMap<String, BTreeMap<String, i64>>,
        reads: ReadStats,
    ) -> Self {
        Self {
            buckets: buckets
                .into_iter()
                .map(|(minute_ms, counters)| Bucket {
                    minute_ms,
                    counters,
                })
                .collect(),
            flows,
            reads,
        }
    }
}

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
    fn add_page(&mut self, items: &[HashMap<String, AttributeValue>], consistent: bool) {
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

/// A bucket item's counters.
fn numbers(item: &HashMap<String, AttributeValue>) -> impl Iterator<Item = (&String, i64)> {
    item.iter()
        .filter(|(k, _)| ![key::PK, key::SK, key::TTL].contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k, v.as_n().ok()?.parse::<i64>().ok()?)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_with(buckets: &[(Scope, i64, &str, i64)]) -> Plan {
        let mut p = Plan::default();
        for (scope, m, name, n) in buckets {
            *p.buckets
                .entry((scope.clone(), *m))
                .or_default()
                .entry((*name).to_string())
                .or_default() += n;
        }
        p
    }

    #[test]
    fn a_write_is_late_once_its_minute_is_older_than_the_margin() {
        let h = 10 * HOUR_MS;
        let minute = h + 30 * 60_000;
        let p = plan_with(&[(Scope::Org, minute, attr::STARTED, 1)]);
        assert!(late_hours(&p, minute + LATE_AFTER_MS).is_empty());
        assert_eq!(
            late_hours(&p, minute + LATE_AFTER_MS + 1),
            [h].into_iter().collect()
        );
    }

    #[test]
    fn a_span_marks_every_hour_it_reaches_back_into() {
        let h = 10 * HOUR_MS;
        // Ends 5 minutes into hour h + 1 after 20 minutes: reaches into h.
        let end = h + HOUR_MS + 5 * 60_000;
        let p = plan_with(&[(Scope::Org, end, "span_20", 1)]);
        // An hour later h's last minute is late, h + 1's end minute is not.
        let now = h + HOUR_MS + 54 * 60_000;
        assert_eq!(late_hours(&p, now), [h].into_iter().collect());
        assert_eq!(
            late_hours(&p, end + LATE_AFTER_MS + 1),
            [h, h + HOUR_MS].into_iter().collect()
        );
        // A span never reaches back more than the longest session counted.
        let long = plan_with(&[(Scope::Org, end, "span_9999", 1)]);
        let first = end - (MAX_ACTIVE_MINUTES - 1) * 60_000;
        assert_eq!(
            late_hours(&long, i64::MAX).first().copied(),
            Some(hour_of(first))
        );
    }

    #[test]
    fn an_event_of_one_flow_writes_one_cell_with_its_own_count_in_it() {
        let f = Scope::Flow("f-1".into());
        let p = plan_with(&[
            (Scope::Org, 60_000, attr::EVENTS, 1),
            (Scope::Org, 60_000, attr::STARTED, 1),
            (f.clone(), 60_000, attr::STARTED, 1),
        ]);
        let c = cells(&p);
        assert_eq!(c.len(), 1);
        let cell = &c[&(60_000, Some("f-1".to_string()))];
        assert_eq!(cell.get(attr::STARTED), Some(&1));
        assert_eq!(cell.get(attr::EVENTS), Some(&1));
    }

    #[test]
    fn flowless_counts_and_several_flows_keep_the_org_total() {
        let only_org = plan_with(&[(Scope::Org, 0, attr::EVENTS, 1)]);
        assert_eq!(
            cells(&only_org).into_keys().collect::<Vec<_>>(),
            vec![(0, None)]
        );
        // An escalation moves counts in two flows' minutes: the org's total
        // is their sum, with nothing left over for a flowless cell.
        let p = plan_with(&[
            (Scope::Org, 0, attr::EVENTS, 1),
            (Scope::Flow("a".into()), 0, attr::CONTAINED, -1),
            (Scope::Org, 0, attr::CONTAINED, -1),
            (Scope::Flow("b".into()), 0, attr::ESCALATED, 1),
            (Scope::Org, 0, attr::ESCALATED, 1),
        ]);
        let c = cells(&p);
        assert_eq!(c.len(), 3, "two flows and the event's own count: {c:?}");
        assert_eq!(c[&(0, None)].get(attr::EVENTS), Some(&1));
        let total = |name: &str| -> i64 { c.values().filter_map(|x| x.get(name)).sum() };
        assert_eq!(total(attr::CONTAINED), -1);
        assert_eq!(total(attr::ESCALATED), 1);
        // An org counter that is not org-only never rides in a flow's cell
        // (flow views would show it).
        let odd = plan_with(&[
            (Scope::Org, 0, attr::STARTED, 2),
            (Scope::Flow("a".into()), 0, attr::STARTED, 1),
        ]);
        let c = cells(&odd);
        assert_eq!(c[&(0, Some("a".to_string()))].get(attr::STARTED), Some(&1));
        assert_eq!(c[&(0, None)].get(attr::STARTED), Some(&1));
    }

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
