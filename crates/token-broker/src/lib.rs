//! The fleet-wide token broker: one token per slot for every container,
//! refreshed by one writer at a time under a DynamoDB lease, read through an
//! in-memory tier, with single-flight recovery after a 401.
#![warn(missing_docs)]

mod broker;
pub mod config;
pub mod fleet;
mod refresher;
mod source;

pub use broker::TokenBroker;
pub use config::{BrokerConfig, Clamped, Margin, TokenConfig};
pub use refresher::{SlotOutcome, SlotReport, TickReport};
pub use source::{
    GenesysTokenSource, SecretsManagerCredentials, THROTTLED_LOGIN_WAIT, genesys_broker,
};
pub use token_store::tenants::{TENANTS_TABLE, Tenant, TenantRegistry};
pub use token_store::{StoreError, TokenItem, TokenStore};

use std::future::Future;
use std::time::Duration;

use genesys::{AccessToken, IssuedToken};
use token_store::hash64;

/// Where tokens come from. Genesys Cloud in production; anything in tests.
pub trait TokenSource: Send + Sync + 'static {
    /// One new token.
    fn fetch(&self) -> impl Future<Output = Result<IssuedToken, SourceError>> + Send;
    /// Whether the issuer still accepts `token`.
    fn check(
        &self,
        token: &AccessToken,
    ) -> impl Future<Output = Result<TokenHealth, SourceError>> + Send;
}

/// What the issuer says of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHealth {
    /// Accepted.
    Alive,
    /// Rejected (401): replace it.
    Dead,
}

/// A token source failure, classified for the shared backoff.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// Retrying will not help until someone fixes configuration (wrong secret).
    #[error("{0}")]
    Rejected(String),
    /// The issuer asked to wait.
    #[error("{message}")]
    RateLimited {
        /// What happened.
        message: String,
        /// At least this long.
        retry_after: Duration,
    },
    /// Down or unreachable: back off exponentially.
    #[error("{0}")]
    Unavailable(String),
}

impl SourceError {
    /// A stable name for the kind of failure, safe to show anywhere.
    pub fn code(&self) -> &'static str {
        match self {
            SourceError::Rejected(_) => "credentials_rejected",
            SourceError::RateLimited { .. } => "rate_limited",
            SourceError::Unavailable(_) => "unavailable",
        }
    }
}

/// Why no token could be handed out.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    /// The token item could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This caller held the lease and the fetch failed.
    #[error("token slot {slot}: {source}")]
    Source {
        /// The slot.
        slot: usize,
        /// The source's error.
        source: SourceError,
    },
    /// No usable token and the fleet is backing off after failures.
    #[error(
        "token slot {slot} has no usable token and refreshes are backing off until {retry_at_ms} (epoch ms): {last_error}"
    )]
    BackingOff {
        /// The slot.
        slot: usize,
        /// Epoch ms.
        retry_at_ms: i64,
        /// The last fetch error recorded on the item.
        last_error: String,
    },
    /// Another writer held the lease and published nothing in time.
    #[error(
        "token slot {slot}: no new token within {waited_ms} ms while another writer held the lease"
    )]
    WaitTimedOut {
        /// The slot.
        slot: usize,
        /// How long this caller waited.
        waited_ms: u64,
    },
    /// A slot outside the pool.
    #[error("token slot {slot} does not exist (pool size {pool_size})")]
    NoSuchSlot {
        /// The slot asked for.
        slot: usize,
        /// The pool's size.
        pool_size: usize,
    },
}

/// A token handed to a caller, with the version to report if it is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotToken {
    /// The slot it came from.
    pub slot: usize,
    /// Its fencing version.
    pub version: u64,
    /// The bearer token.
    pub token: AccessToken,
    /// Epoch ms.
    pub expires_at: i64,
}

/// A call's failure: the token could not be had, or the API call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E: std::error::Error + 'static> {
    /// No token.
    #[error(transparent)]
    Token(#[from] BrokerError),
    /// The call's own error (after at most one retry with a new token).
    #[error(transparent)]
    Call(E),
}

/// An error that may mean "the token was rejected".
pub trait Unauthorized {
    /// The issuer rejected the token (a 401).
    fn is_unauthorized(&self) -> bool;
}

impl Unauthorized for genesys::ApiError {
    fn is_unauthorized(&self) -> bool {
        genesys::ApiError::is_unauthorized(self)
    }
}

/// Stable slot for a key (a conversation id), so one conversation always uses one token.
pub fn slot_for(key: &str, pool_size: usize) -> usize {
    let slots = u64::try_from(pool_size.max(1)).unwrap_or(1);
    usize::try_from(hash64(key) % slots).unwrap_or(0)
}
