//! Virtual Agent KPIs: what each event adds to which per-minute bucket (pure),
//! the DynamoDB store that counts each event exactly once, and the dashboard's
//! snapshot, routes and page.
#![warn(missing_docs)]

pub mod dashboard;
pub mod kpi;
pub mod layout;
pub mod migrate;
pub mod org_items;
pub mod purge;
pub mod retention;
pub mod store;
pub mod sweep_lease;

pub use kpi::{
    ConversationState, Enrichment, KpiConfig, MAX_NAMES_PER_FLOW_DAY, NameKind, OTHER_NAME,
    PendingEnrichment, Plan, Scope, attr, plan, plan_enrichment,
};
pub use kpi::{ExitClass, classify, duration_bucket, minute_of, needs_state};
pub use purge::{OrgPurge, PurgeReport};
pub use retention::Retention;
pub use store::{
    ANALYTICS_TABLE, AnalyticsError, AnalyticsStore, Applied, Breakdown, Bucket, MARKER_TTL_S,
    ReadStats, StateRead, batch_items, org_prefix,
};
pub use sweep_lease::SweepLease;
