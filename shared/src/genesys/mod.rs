//! Genesys Cloud: where its hosts are, and a small client for the token
//! endpoint and the Platform API calls this product makes.

mod client;
mod hosts;

pub use client::{ApiError, GenesysClient, RetryPolicy, TokenRequestError};
pub use hosts::{Hosts, REGIONS, UnknownRegion};
