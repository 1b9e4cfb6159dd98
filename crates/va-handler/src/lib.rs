//! The conversation-events handler core, shared by the Lambda, the local
//! stack, `va-admin redrive` and the tests: parse and bound, plan with the
//! conversation's state, apply exactly once; dead-letter what is malformed.
//! No Platform API call: enrichment is `va-enrichment`'s job.
#![warn(missing_docs)]

pub mod config;
pub mod dead_letter;
pub mod function;
mod handler;
pub mod redrive;
pub mod tenancy;

pub use config::HandlerConfig;
pub use dead_letter::DeadLetterQueue;
pub use function::ConversationEvents;
pub use handler::{EventHandler, HandleError, Handled};
pub use tenancy::{OrgDirectory, Tenancy};
