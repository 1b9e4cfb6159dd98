//! The domain library every function links: the Genesys Cloud client, the
//! fleet-wide token broker, the Virtual Agent event model and the analytics store.

pub mod analytics;
pub mod broker;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod dashboard;
pub mod emf;
pub mod enrich;
pub mod events;
pub mod genesys;
pub mod handler;
pub mod telemetry;
pub mod time;
pub mod token;

pub use clock::{Clock, SystemClock};
pub use token::{AccessToken, IssuedToken, Redacted};
