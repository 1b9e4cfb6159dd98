//! Genesys Cloud as this product uses it: the login and API hosts of each
//! region, the client-credentials token endpoint, the Platform API calls, and
//! the OAuth client's credentials. No AWS here.
#![warn(missing_docs)]

mod client;
mod credentials;
mod hosts;
mod rate_scope;
mod token;

pub use client::{
    ApiError, BuildError, GenesysClient, MAX_RETRY_AFTER, MAX_TOKEN_LIFETIME_S, RETRY_AFTER_CAP,
    RetryPolicy, TokenRequestError,
};
pub use credentials::{ClientCredentials, CredentialsError, parse_secret};
pub use hosts::{Hosts, REGIONS, UnknownRegion, encode_component, interval};
pub use rate_scope::{RateScopeError, RateScopeVerdict, probe_rate_scope};
pub use token::{AccessToken, IssuedToken};
