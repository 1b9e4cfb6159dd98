//! Final intents and bot results of ended bot sessions, from the Genesys
//! Cloud analytics API: the scheduled sweeper the product runs (batched, one
//! sessions and one turns query per bot flow and sweep, exactly once), the
//! Platform API access it calls through (the token broker in production), and
//! the per-session lookup the naive baselines make.
#![warn(missing_docs)]

pub mod config;
pub mod lookup;
mod matching;
pub mod orgs;
pub mod sweep;

pub use config::SweeperConfig;
pub use lookup::{ApiAccess, BrokerAccess};
pub use orgs::{OrgSweep, OrgSweeps};
pub use sweep::{SweepConfig, SweepReport, Sweeper};
