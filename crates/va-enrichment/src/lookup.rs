//! Platform API access for enrichment, and the per-session lookup a naive
//! integration makes for every `flow.end` (the baselines use it; the product
//! enriches in batches with the sweeper instead): the session by completion
//! time, then its reporting turns for the final intent.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use std::future::Future;

use genesys::{ApiError, GenesysClient, encode_component, interval};
use token_broker::{BrokerError, CallError, TokenBroker, TokenSource, slot_for};
use va_analytics::Enrichment;

/// Why an ended session could not be enriched.
#[derive(Debug, Clone, thiserror::Error)]
#[allow(missing_docs)]
pub enum EnrichError {
    /// The broker had no token.
    #[error("enrichment of conversation {conversation_id} has no token: {source}")]
    Token {
        conversation_id: String,
        source: BrokerError,
    },
    /// The Platform API refused.
    #[error("enrichment of conversation {conversation_id} failed: {source}")]
    Api {
        conversation_id: String,
        source: ApiError,
    },
    /// Retries did not fit before the invocation's deadline.
    #[error(
        "enrichment of conversation {conversation_id} could not finish before the invocation's deadline (last: {last})"
    )]
    Deadline {
        conversation_id: String,
        last: String,
    },
    /// The session is not (yet) in the analytics API.
    #[error("bot session of conversation {conversation_id} is not in the analytics API yet")]
    NotFound { conversation_id: String },
}

/// What one ended session needs looked up.
#[derive(Debug, Clone)]
pub struct Lookup<'a> {
    /// The conversation.
    pub conversation_id: &'a str,
    /// The bot flow.
    pub flow_id: &'a str,
    /// `eventTime` of the `flow.end`: when the session completed. The
    /// sessions `interval` filters on completion (`dateCompleted`).
    pub flow_end_ms: i64,
}

/// What an enricher did, for metrics and reports.
#[derive(Debug, Default)]
pub struct EnrichStats {
    /// Platform API requests (the `EnrichmentCalls` metric).
    pub api_calls: AtomicU64,
    /// 429s waited out.
    pub rate_limited: AtomicU64,
    /// Calls repeated once after a 401 with the replacement token.
    pub retried_after_401: AtomicU64,
}

/// Platform API access under some token policy: the fleet's broker in
/// production; a per-container token in the baselines it is compared with.
pub trait ApiAccess: Send + Sync + 'static {
    /// `GET path` for work on `conversation_id`, the HTTP request cut off
    /// at `deadline`: the body, and whether the call was retried after a
    /// 401. The token's own work (a fetch under the token item's lease) is
    /// never cut off: dropping it would leave the lease held.
    fn get_json(
        &self,
        conversation_id: &str,
        path: &str,
        deadline: Instant,
    ) -> impl Future<Output = Result<(Value, bool), CallError<ApiError>>> + Send;
}

/// The broker's token, slot chosen per conversation, one retry after a 401.
pub struct BrokerAccess<S> {
    /// The container's broker.
    pub broker: Arc<TokenBroker<S>>,
    /// The Platform API.
    pub api: GenesysClient,
}

impl<S: TokenSource> ApiAccess for BrokerAccess<S> {
    async fn get_json(
        &self,
        conversation_id: &str,
        path: &str,
        deadline: Instant,
    ) -> Result<(Value, bool), CallError<ApiError>> {
        let slot = slot_for(conversation_id, self.broker.config().pool_size);
        self.broker
            .call(slot, |t| {
                let api = self.api.clone();
                let limit = deadline.saturating_duration_since(Instant::now());
                async move { api.get_json_within(&t, path, limit).await }
            })
            .await
    }
}

/// Looks sessions up through `A`; caches per (conversation, flow).
pub struct Enricher<A> {
    access: A,
    cache: Mutex<HashMap<(String, String), Enrichment>>,
    /// What it did.
    pub stats: EnrichStats,
}

const CACHE_LIMIT: usize = 10_000;
/// The largest page the analytics endpoints accept.
const PAGE_SIZE: u32 = 250;
/// Half-width of the completion-time window searched around `flow.end`.
const WINDOW_MS: i64 = 120_000;

/// Why [`get_retrying`] stopped.
pub(crate) enum GetError {
    /// No token.
    Token(BrokerError),
    /// A failure no retry helps.
    Api(ApiError),
    /// Out of tries or time; the last failure.
    GaveUp(String),
    /// The deadline came first: nothing failed, the work waits.
    Deadline,
}

/// One GET through `access`: a 401 is the access policy's business (the
/// broker's single-flight path, one retry); a 429 waits its `Retry-After`,
/// 5xx and transport errors back off exponentially; at most `max_tries`
/// tries. No request starts at or after `deadline`, none runs past it, and
/// no wait would pass it.
pub(crate) async fn get_retrying<A: ApiAccess>(
    access: &A,
    stats: &EnrichStats,
    key: &str,
    path: &str,
    deadline: Instant,
    max_tries: u32,
) -> Result<Value, GetError> {
    let mut pause = Duration::from_millis(100);
    let mut tries = 0u32;
    loop {
        if Instant::now() >= deadline {
            return Err(GetError::Deadline);
        }
        tries = tries.saturating_add(1);
        stats.api_calls.fetch_add(1, Ordering::Relaxed);
        let (wait, last) = match access.get_json(key, path, deadline).await {
            Ok((v, retried)) => {
                if retried {
                    stats.retried_after_401.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(v);
            }
            Err(CallError::Token(e)) => return Err(GetError::Token(e)),
            Err(CallError::Call(ApiError::RateLimited { retry_after })) => {
                stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                (retry_after, "429".to_string())
            }
            Err(CallError::Call(ApiError::Transport(_))) if Instant::now() >= deadline => {
                return Err(GetError::Deadline);
            }
            Err(CallError::Call(e)) if e.is_transient() => {
                let p = pause;
                pause = (pause * 2).min(Duration::from_secs(2));
                (p, e.to_string())
            }
            Err(CallError::Call(e)) => return Err(GetError::Api(e)),
        };
        if tries >= max_tries {
            return Err(GetError::GaveUp(format!("{last} ({tries} tries)")));
        }
        if Instant::now()
            .checked_add(wait)
            .is_none_or(|t| t >= deadline)
        {
            return Err(GetError::GaveUp(format!("{last} (no time left to retry)")));
        }
        tokio::time::sleep(wait).await;
    }
}

/// A `dateCreated` as epoch ms (unparseable or absent sorts first).
pub(crate) fn date_ms(v: &Value) -> i64 {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s.trim()).ok())
        .map_or(i64::MIN, |t| t.timestamp_millis())
}

impl<A: ApiAccess> Enricher<A> {
    /// An enricher calling through `access`.
    pub fn new(access: A) -> Self {
        Self {
            access,
            cache: Mutex::new(HashMap::new()),
            stats: EnrichStats::default(),
        }
    }

    /// The final intent and bot result of one ended session.
    pub async fn enrich(
        &self,
        lookup: &Lookup<'_>,
        deadline: Instant,
    ) -> Result<Enrichment, EnrichError> {
        let key = (
            lookup.conversation_id.to_string(),
            lookup.flow_id.to_string(),
        );
        if let Some(hit) = self.cache.lock().await.get(&key) {
            return Ok(hit.clone());
        }
        let Some(session) = self.find_session(lookup, deadline).await? else {
            return Err(EnrichError::NotFound {
                conversation_id: lookup.conversation_id.to_string(),
            });
        };
        let turns = self
            .session_turns(lookup, session["id"].as_str().unwrap_or_default(), deadline)
            .await?;
        // The final intent is the last turn's (latest dateCreated; on a tie
        // the later one in the list).
        let last = turns.iter().max_by_key(|t| date_ms(&t["dateCreated"]));
        let e = Enrichment {
            final_intent: last
                .and_then(|t| t["intent"]["name"].as_str())
                .map(str::to_string),
            bot_result: session["botResult"].as_str().map(str::to_string),
        };
        let mut cache = self.cache.lock().await;
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, e.clone());
        Ok(e)
    }

    /// The flow's session of this conversation, among those completed in
    /// `[end - 2 min, end + 2 min)`, following `nextUri` (relative
    /// `/api/v2/` URIs only).
    async fn find_session(
        &self,
        lookup: &Lookup<'_>,
        deadline: Instant,
    ) -> Result<Option<Value>, EnrichError> {
        let interval = interval(
            lookup.flow_end_ms.saturating_sub(WINDOW_MS),
            lookup.flow_end_ms.saturating_add(WINDOW_MS),
        )
        .unwrap_or_default();
        let mut path = format!(
            "/api/v2/analytics/botflows/{}/sessions?interval={}&pageSize={PAGE_SIZE}",
            encode_component(lookup.flow_id),
            encode_component(&interval)
        );
        loop {
            let mut page = self.get(&path, lookup.conversation_id, deadline).await?;
            let found = page["entities"]
                .as_array_mut()
                .into_iter()
                .flatten()
                .find(|e| {
                    e["conversation"]["id"].as_str() == Some(lookup.conversation_id)
                        && e["flow"]["id"].as_str() == Some(lookup.flow_id)
                        && e["id"].is_string()
                });
            if let Some(session) = found {
                return Ok(Some(session.take()));
            }
            match page["nextUri"].as_str() {
                Some(next) if next.starts_with("/api/v2/") => path = next.to_string(),
                _ => return Ok(None),
            }
        }
    }

    /// Every reporting turn of one session, following `nextUri`.
    async fn session_turns(
        &self,
        lookup: &Lookup<'_>,
        session_id: &str,
        deadline: Instant,
    ) -> Result<Vec<Value>, EnrichError> {
        let mut path = format!(
            "/api/v2/analytics/botflows/{}/divisions/reportingturns?sessionId={}&pageSize={PAGE_SIZE}",
            encode_component(lookup.flow_id),
            encode_component(session_id)
        );
        let mut turns = Vec::new();
        loop {
            let mut page = self.get(&path, lookup.conversation_id, deadline).await?;
            if let Some(entities) = page["entities"].as_array_mut() {
                turns.extend(
                    entities
                        .drain(..)
                        .filter(|t| t["sessionId"].as_str().is_none_or(|s| s == session_id)),
                );
            }
            match page["nextUri"].as_str() {
                Some(next) if next.starts_with("/api/v2/") => path = next.to_string(),
                _ => return Ok(turns),
            }
        }
    }

    /// One GET, retried until the deadline (see [`get_retrying`]).
    async fn get(
        &self,
        path: &str,
        conversation_id: &str,
        deadline: Instant,
    ) -> Result<Value, EnrichError> {
        let conversation_id = conversation_id.to_string();
        get_retrying(
            &self.access,
            &self.stats,
            conversation_id.as_str(),
            path,
            deadline,
            u32::MAX,
        )
        .await
        .map_err(|e| match e {
            GetError::Token(source) => EnrichError::Token {
                conversation_id,
                source,
            },
            GetError::Api(source) => EnrichError::Api {
                conversation_id,
                source,
            },
            GetError::GaveUp(last) => EnrichError::Deadline {
                conversation_id,
                last,
            },
            GetError::Deadline => EnrichError::Deadline {
                conversation_id,
                last: "no time left".into(),
            },
        })
    }
}
