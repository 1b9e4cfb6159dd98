//! Token policies the product is compared with, behind the same handler code:
//! each container fetches and "refreshes" its own token.

use std::time::Duration;

use genesys::AccessToken;
use genesys::ClientCredentials;
use genesys::{ApiError, GenesysClient};
use lambda_support::Clock;
use serde_json::Value;
use token_broker::CallError;
use tokio::sync::Mutex;
use va_enrichment::lookup::ApiAccess;

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
        deadline: tokio::time::Instant,
    ) -> Result<(Value, bool), CallError<ApiError>> {
        let mut force = false;
        let mut pause = self.policy.backoff;
        for attempt in 0..=self.policy.retries_after_401 {
            let Some(token) = self.current(force).await else {
                return Err(CallError::Call(ApiError::Unauthorized {
                    message: "no token".into(),
                }));
            };
            let limit = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.api.get_json_within(&token, path, limit).await {
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

/// A naive integration's container: before counting, each ended bot session
/// is looked up in the Platform API with the container's own token, and an
/// unfinished lookup fails the invocation (as the product did before its
/// enrichment moved to the sweeper). The counting is the product's handler.
pub struct NaiveContainer<C> {
    handler: va_handler::EventHandler,
    lookups: va_enrichment::lookup::Enricher<OwnToken<C>>,
    kpi: va_analytics::KpiConfig,
}

impl<C: Clock> NaiveContainer<C> {
    /// A container counting through `handler`, looking up through `access`.
    pub fn new(handler: va_handler::EventHandler, access: OwnToken<C>) -> Self {
        Self {
            handler,
            lookups: va_enrichment::lookup::Enricher::new(access),
            kpi: va_analytics::KpiConfig::default(),
        }
    }
}

impl<C: Clock> crate::replay::Container for NaiveContainer<C> {
    async fn invoke(
        &self,
        event: &Value,
        deadline: tokio::time::Instant,
    ) -> Result<va_handler::Handled, crate::replay::InvokeError> {
        use va_events::{Body, Event, Topic};
        if let Ok(Event::Conversation {
            topic: Topic::FlowEnd,
            conversation_id,
            body: Body::Flow(b),
            ..
        }) = va_events::parse(event)
            && self.kpi.is_bot(&b.flow_type)
        {
            let lookup = va_enrichment::lookup::Lookup {
                conversation_id: &conversation_id,
                flow_id: &b.flow_id,
                flow_end_ms: b.event_time,
            };
            self.lookups
                .enrich(&lookup, deadline)
                .await
                .map_err(|e| crate::replay::InvokeError::Failed(e.to_string()))?;
        }
        Ok(self.handler.handle(event, deadline).await?)
    }

    fn api_stats(&self) -> (u64, u64, u64) {
        let s = &self.lookups.stats;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        (
            load(&s.api_calls),
            load(&s.retried_after_401),
            load(&s.rate_limited),
        )
    }
}
