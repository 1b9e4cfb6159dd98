//! What the token endpoint issues.

use lambda_support::Redacted;

/// A Genesys Cloud OAuth access token.
pub type AccessToken = Redacted;

/// A token as the token endpoint issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The bearer token.
    pub access_token: AccessToken,
    /// `token_type`, normally `bearer`.
    pub token_type: String,
    /// `expires_in`, seconds.
    pub expires_in: u64,
}
