//! Token policies the product is compared with, behind the same handler code:
//! each container fetches and "refreshes" its own token.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;
use token_broker::CallError;
use genesys::ClientCredentials;
use va_handler::enrich::ApiAccess;
use genesys::{ApiError, GenesysClient};
use genesys::AccessToken;
use lambda_support::Clock;

/// How a per-container token is managed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OwnTokenPolicy {
    /// Re-fetch on this fixed timer, whether needed or not.
    pub refresh_every: Duration,
    /// Tries after a 401, each with a freshly fetched token.
    pub retries_after_401: u32,
    /// Backoff before each retry (doubling); zero for none.
    pub backoff: Duration,
}

impl OwnTokenPolicy {
    /// Fetch at cold start and every 5 minutes; one retry after a 401.
    pub fn naive() -> Self {
        Self {
            refresh_every: Duration::from_secs(300),
            retries_after_401: 1,
            backoff: Duration::ZERO,
        }
    }

    /// The usual forum advice: refresh every 540000 ms, exponential backoff
    /// (the 45-container cap is the fleet's, applied by the caller).
    pub fn seed_advice() -> Self {
        Self {
            refresh_every: Duration::from_millis(540_000),
            retries_after_401: 3,
            backoff: Duration::from_millis(20),
        }
    }
}

/// One container's own token.
pub struct OwnToken<C> {
    api: GenesysClient,
    creds: ClientCredentials,
    clock: C,
    policy: OwnTokenPolicy,
    token: Mutex<Option<(AccessToken, i64)>>,
}

impl<C: Clock> OwnToken<C> {
    pub fn new(
        api: GenesysClient,
        creds: ClientCredentials,
        clock: C,
        policy: OwnTokenPolicy,
    ) -> Self {
        Self {
            api,
            creds,
            clock,
            policy,
            token: Mutex::new(None),
        }
    }

    async fn current(&self, force: bool) -> Option<AccessToken> {
        let now = self.clock.now_ms();
        let mut slot = self.token.lock().await;
        let due = slot
            .as_ref()
            .is_none_or(|(_, at)| now - at >= self.policy.refresh_every.as_millis() as i64);
        if force || due {
            *slot = self
                .api
                .request_token(&self.creds)
                .await
                .ok()
                .map(|t| (t.access_token, now));
        }
        slot.as_ref().map(|(t, _)| t.clone())
    }
}

impl<C: Clock> ApiAccess for OwnToken<C> {
    async fn get_json(
        &self,
        _conversation_id: &str,
        path: &str,
    ) -> Result<(Value, bool), CallError<ApiError>> {
        let mut force = false;
        let mut pause = self.policy.backoff;
        for attempt in 0..=self.policy.retries_after_401 {
            let Some(token) = self.current(force).await else {
                return Err(CallError::Call(ApiError::Unauthorized {
                    message: "no token".into(),
                }));
            };
            match self.api.get_json(&token, path).await {
                Ok(v) => return Ok((v, attempt > 0)),
                Err(e) if e.is_unauthorized() && attempt < self.policy.retries_after_401 => {
                    force = true;
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                    }
                }
                Err(e) => return Err(CallError::Call(e)),
            }
        }
        Err(CallError::Call(ApiError::Unauthorized {
            message: "still rejected after retries".into(),
        }))
    }
}
