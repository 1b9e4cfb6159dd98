//! The plan of one event: counter deltas per bucket (scope and minute),
//! and the state and enrichment it leaves.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ConversationState, PendingEnrichment, minute_of};

/// Whose bucket: the whole org, or one flow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Scope {
    /// Every flow.
    Org,
    /// One flow, by id.
    Flow(String),
}

/// The aggregate changes one event makes, merged per bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The event's EventBridge id.
    pub event_id: String,
    /// The event's content key: its marker, so a re-send counts once.
    pub marker: String,
    /// Counter deltas per (scope, minute start).
    pub buckets: BTreeMap<(Scope, i64), BTreeMap<String, i64>>,
    /// The conversation the state belongs to.
    pub conversation_id: Option<String>,
    /// The conversation's state after this event, when the event reads it.
    pub state: Option<ConversationState>,
    /// A bot session to enrich later.
    pub pending: Option<PendingEnrichment>,
}

impl Plan {
    /// Changes nothing: no counter, no state, nothing to enrich.
    pub fn is_noop(&self) -> bool {
        self.state.is_none()
            && self.pending.is_none()
            && self.buckets.values().all(|c| c.values().all(|n| *n == 0))
    }

    fn add(&mut self, scope: &Scope, minute_ms: i64, name: &str, n: i64) {
        let e: &mut i64 = self
            .buckets
            .entry((scope.clone(), minute_of(minute_ms)))
            .or_default()
            .entry(name.to_string())
            .or_default();
        *e = e.saturating_add(n);
    }

    /// Adds to the org bucket and the flow's bucket.
    pub(super) fn both(&mut self, flow: &Scope, minute_ms: i64, name: &str, n: i64) {
        self.add(&Scope::Org, minute_ms, name, n);
        self.add(flow, minute_ms, name, n);
    }
}
