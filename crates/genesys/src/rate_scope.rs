//! Which reading of the Platform API's 300 requests a minute holds for an
//! org: per token or per OAuth client (docs/DESIGN.md 3.4). Genesys' own
//! sources disagree and the `inin-ratelimit-*` headers that once showed the
//! count are retired, so the probe asks the platform itself: it spends one
//! token's budget, then makes one call with a second token of the same client.

use crate::client::{ApiError, GenesysClient, TokenRequestError};
use crate::credentials::ClientCredentials;

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateScopeVerdict {
    /// The second token was served after the first was refused: each token
    /// has its own budget, and a token pool multiplies it.
    PerToken {
        /// Requests the first token made before its 429, that one included.
        requests: u32,
    },
    /// The second token was refused too: the client's tokens share one
    /// budget, and a pool buys nothing.
    PerClient {
        /// Requests the first token made before its 429, that one included.
        requests: u32,
    },
    /// No 429 within the allowance: the limit is higher than that.
    NoLimitWithin {
        /// Requests made.
        requests: u32,
    },
}

/// Why the probe could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RateScopeError {
    /// A token could not be had.
    #[error("could not get a token for the probe: {0}")]
    Token(#[from] TokenRequestError),
    /// A call failed other than by a 429.
    #[error("a probe request failed: {0}")]
    Call(#[from] ApiError),
}

/// The cheapest authenticated request: describes the calling token.
const PROBE_PATH: &str = "/api/v2/tokens/me";

/// Spends up to `max_requests` of a fresh token's budget until a 429, then
/// asks once with a second fresh token of the same client. Costs two token
/// requests and at most `max_requests + 1` API requests, within a minute if
/// the platform answers quickly; run it when nothing else uses the client.
pub async fn probe_rate_scope(
    client: &GenesysClient,
    creds: &ClientCredentials,
    max_requests: u32,
) -> Result<RateScopeVerdict, RateScopeError> {
    let first = client.request_token(creds).await?;
    let second = client.request_token(creds).await?;
    let mut requests = 0;
    while requests < max_requests {
        requests += 1;
        match client.get_json(&first.access_token, PROBE_PATH).await {
            Ok(_) => {}
            Err(ApiError::RateLimited { .. }) => {
                return match client.get_json(&second.access_token, PROBE_PATH).await {
                    Ok(_) => Ok(RateScopeVerdict::PerToken { requests }),
                    Err(ApiError::RateLimited { .. }) => {
                        Ok(RateScopeVerdict::PerClient { requests })
                    }
                    Err(e) => Err(e.into()),
                };
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(RateScopeVerdict::NoLimitWithin { requests })
}
