//! The conversation-events pipeline's core, shared by the Lambdas, the local
//! stack and the tests: the event handler (parse, plan, apply exactly once,
//! no Platform API call) and the enrichment sweeper (final intents and bot
//! results in batches, through the token broker).
#![warn(missing_docs)]

pub mod config;
pub mod enrich;
mod handler;
pub mod sweep;

pub use config::{HandlerConfig, SweeperConfig};
pub use handler::{EventHandler, HandleError, Handled};
pub use sweep::{SweepConfig, SweepReport, Sweeper};
