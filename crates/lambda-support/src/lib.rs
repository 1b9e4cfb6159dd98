//! What every function of the product needs, whatever its job: an injectable
//! clock, configuration from the environment with one error per bad variable,
//! CloudWatch EMF metrics, JSON logs, and a string type for secrets that never
//! prints its value.
#![warn(missing_docs)]

mod clock;
pub mod emf;
mod env;
mod redacted;
pub mod telemetry;
mod url;

pub use clock::{Clock, SystemClock};
pub use env::{ConfigError, ConfigErrors, Env};
pub use redacted::Redacted;
pub use url::{is_https_or_allowed_loopback, is_loopback_http};

/// The product's release (the workspace's version, CHANGELOG.md): the
/// stack's `Version` output, each function's first log line and the
/// dashboard's footer say it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
