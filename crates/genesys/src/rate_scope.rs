//! Which reading of the Platform API's 300 requests a minute holds for an
//! org: per token or per OAuth client (docs/DESIGN.md 3.4). Genesys' own
//! sources disagree and the `inin-ratelimit-*` headers that once showed the
//! count are retired, so the probe asks the platform itself: it spends one
//! token's budget, then makes one call with a second token of the same
//! client, then one more with the first to be sure its window has not passed.

use std::time::{Duration, Instant};

use crate::client::{ApiError, GenesysClient, TokenRequestError};
use crate::credentials::ClientCredentials;
use crate::token::AccessToken;

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateScopeVerdict {
    /// The second token was served while the first was still refused: each
    /// token has its own budget, and a token pool multiplies it.
    PerToken {
        /// Requests the first token made up to its first 429.
        requests: u32,
    },
    /// The second token was refused too: the client's tokens share one
    /// budget, and a pool buys nothing.
    PerClient {
        /// Requests the first token made up to its first 429.
        requests: u32,
    },
    /// No conclusion: no 429 within the allowance, or the minute passed
    /// before the answer (a slow link); the reason says which.
    Inconclusive {
        /// Requests made with the first token.
        requests: u32,
        /// Why.
        reason: &'static str,
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
/// Requests in flight at once, so 300 fit in a minute on a slow link.
const IN_FLIGHT: u32 = 10;
/// The whole probe must fit in one rate window to mean anything.
const WINDOW: Duration = Duration::from_secs(50);

/// `Ok(true)` served, `Ok(false)` refused with a 429.
async fn served(client: &GenesysClient, token: &AccessToken) -> Result<bool, ApiError> {
    match client.get_json(token, PROBE_PATH).await {
        Ok(_) => Ok(true),
        Err(ApiError::RateLimited { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Spends up to `max_requests` of a fresh token's budget (ten at a time)
/// until a 429, then asks once with a second fresh token of the same client
/// and once more with the first. Costs two token requests and at most
/// `max_requests + 11` API requests; run it when nothing else uses the client.
pub async fn probe_rate_scope(
    client: &GenesysClient,
    creds: &ClientCredentials,
    max_requests: u32,
) -> Result<RateScopeVerdict, RateScopeError> {
    let first = client.request_token(creds).await?.access_token;
    let second = client.request_token(creds).await?.access_token;
    let started = Instant::now();
    let mut requests = 0;
    let refused_at = loop {
        if requests >= max_requests {
            let reason = "no 429 within the allowance: the limit is higher";
            return Ok(RateScopeVerdict::Inconclusive { requests, reason });
        }
        let batch = IN_FLIGHT.min(max_requests - requests);
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..batch {
            let (client, token) = (client.clone(), first.clone());
            calls.spawn(async move { served(&client, &token).await });
        }
        requests += batch;
        let mut refused = false;
        while let Some(answer) = calls.join_next().await {
            let answer = answer.map_err(|e| ApiError::Transport(format!("probe task: {e}")))?;
            refused |= !answer?;
        }
        if refused {
            break requests;
        }
    };
    let verdict = match (
        served(client, &second).await?,
        served(client, &first).await?,
    ) {
        _ if started.elapsed() > WINDOW => RateScopeVerdict::Inconclusive {
            requests: refused_at,
            reason: "the probe outlasted the rate window; run it closer to Genesys Cloud",
        },
        (false, _) => RateScopeVerdict::PerClient {
            requests: refused_at,
        },
        (true, false) => RateScopeVerdict::PerToken {
            requests: refused_at,
        },
        (true, true) => RateScopeVerdict::Inconclusive {
            requests: refused_at,
            reason: "the first token's window passed before the second was asked",
        },
    };
    Ok(verdict)
}
