//! The conversation-events handler core, shared by the Lambda, the local
//! stack and the tests: parse, enrich through the token broker, plan, and
//! apply exactly once.
#![warn(missing_docs)]

pub mod config;
pub mod enrich;
mod handler;

pub use config::HandlerConfig;
pub use handler::{EventHandler, HandleError, Handled};
