//! The conversation-events handler core, shared by the Lambda, the local
//! stack and the tests: parse, plan with the conversation's state, apply
//! exactly once. No Platform API call: enrichment is `va-enrichment`'s job.
#![warn(missing_docs)]

pub mod config;
mod handler;

pub use config::HandlerConfig;
pub use handler::{EventHandler, HandleError, Handled};
