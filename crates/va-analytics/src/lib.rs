//! Virtual Agent KPIs: what each event adds to which per-minute bucket (pure),
//! the DynamoDB store that counts each event exactly once, and the dashboard's
//! snapshot, routes and page.
#![warn(missing_docs)]

pub mod dashboard;
pub mod kpi;
pub mod store;

pub use kpi::{Enrichment, KpiConfig, Plan, Scope, attr, plan};
pub use store::{AnalyticsError, AnalyticsStore, Applied, Bucket};
pub use kpi::{ExitClass, classify, duration_bucket, minute_of, wants_enrichment};
