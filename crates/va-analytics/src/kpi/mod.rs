//! What one event adds to which per-minute bucket. Pure: no I/O, so every
//! KPI rule is unit-tested without a server.

pub mod attr;
mod buckets;
mod counters;
mod enrichment;
mod exits;
mod names;
mod planning;
mod state;

pub use buckets::{Plan, Scope};
pub use counters::{
    DURATION_BOUNDS_S, MAX_ACTIVE_MINUTES, active_from_spans, duration_bucket, duration_percentile,
    minute_of, minute_sk,
};
pub use enrichment::{Enrichment, NO_TURNS_INTENT, PendingEnrichment, plan_enrichment};
pub use exits::{Classified, ExitClass, classify, is_transfer_result};
pub use names::{MAX_NAMES_PER_FLOW_DAY, NameKind, OTHER_NAME};
pub use planning::{KpiConfig, needs_state, plan};
pub use state::{ConversationState, HandBack, QUEUE_AFTER_EXIT_TOLERANCE_MS, hand_back_key};

#[cfg(test)]
mod tests;
