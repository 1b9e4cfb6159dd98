//! What the store reports when it cannot read or write.

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
