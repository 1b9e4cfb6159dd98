//! Types that hold secrets. Their `Debug` and `Display` never print the value.

use std::fmt;
use std::sync::Arc;

/// A secret string. Cheap to clone; shows as `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(Arc<str>);

impl Redacted {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call only where it leaves the process on purpose
    /// (an HTTP header, a DynamoDB attribute).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A Genesys Cloud OAuth access token.
pub type AccessToken = Redacted;

/// A token as the token endpoint issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub access_token: AccessToken,
    pub token_type: String,
    /// `expires_in`, seconds.
    pub expires_in: u64,
}
