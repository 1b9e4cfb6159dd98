//! The fleet-wide token broker: one token per slot for every container,
//! refreshed by one writer at a time under a DynamoDB lease, read through an
//! in-memory tier, with single-flight recovery after a 401.

mod refresher;
mod source;
mod store;

pub use refresher::{SlotOutcome, SlotReport, TickReport};
pub use source::GenesysTokenSource;
pub use store::{Acquire, Lease, StoreError, TokenItem, TokenStore, key_hash};

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rand::Rng;

use crate::clock::Clock;
use crate::token::{AccessToken, IssuedToken};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHealth {
    Alive,
    Dead,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// Retrying will not help until someone fixes configuration (wrong secret).
    #[error("{0}")]
    Rejected(String),
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Duration,
    },
    #[error("{0}")]
    Unavailable(String),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("token slot {slot}: {source}")]
    Source { slot: usize, source: SourceError },
    #[error(
        "token slot {slot} has no usable token and refreshes are backing off until {retry_at_ms} (epoch ms): {last_error}"
    )]
    BackingOff {
        slot: usize,
        retry_at_ms: i64,
        last_error: String,
    },
    #[error(
        "token slot {slot}: no new token within {waited_ms} ms while another writer held the lease"
    )]
    WaitTimedOut { slot: usize, waited_ms: u64 },
    #[error("token slot {slot} does not exist (pool size {pool_size})")]
    NoSuchSlot { slot: usize, pool_size: usize },
}

/// Tuning of the protocol. Times are in the clock's milliseconds except
/// `wait_timeout`, which bounds real waiting.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub pool_size: usize,
    /// Refresh when the token expires within this.
    pub refresh_margin: Duration,
    /// Lease length; longer than the worst-case fetch including retries.
    pub lease: Duration,
    /// Re-read the item when the in-memory copy is older than this.
    pub max_age: Duration,
    /// Treat a token as expired this much early (clock skew).
    pub expiry_skew: Duration,
    /// How long a caller waits for another writer's token.
    pub wait_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            pool_size: 1,
            refresh_margin: Duration::from_secs(600),
            lease: Duration::from_secs(30),
            max_age: Duration::from_secs(60),
            expiry_skew: Duration::from_secs(30),
            wait_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
        }
    }
}

/// A token handed to a caller, with the version to report if it is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotToken {
    pub slot: usize,
    pub version: u64,
    pub token: AccessToken,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
struct Cached {
    token: SlotToken,
    read_at: i64,
}

/// Counters of what this broker instance did.
#[derive(Debug, Default)]
pub struct BrokerStats {
    pub item_reads: AtomicU64,
    pub acquires_won: AtomicU64,
    pub acquires_lost: AtomicU64,
    pub fetches: AtomicU64,
    pub fetch_failures: AtomicU64,
    pub waits: AtomicU64,
    pub stale_marks: AtomicU64,
}

/// A call's failure: the token could not be had, or the API call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Token(#[from] BrokerError),
    #[error(transparent)]
    Call(E),
}

/// An error that may mean "the token was rejected".
pub trait Unauthorized {
    fn is_unauthorized(&self) -> bool;
}

impl Unauthorized for crate::genesys::ApiError {
    fn is_unauthorized(&self) -> bool {
        crate::genesys::ApiError::is_unauthorized(self)
    }
}

/// Stable slot for a key (a conversation id), so one conversation always uses one token.
pub fn slot_for(key: &str, pool_size: usize) -> usize {
    let h = u64::from_str_radix(&key_hash(key), 16).unwrap_or(0);
    (h % pool_size.max(1) as u64) as usize
}

pub struct TokenBroker<S> {
    store: TokenStore,
    source: Arc<S>,
    clock: Arc<dyn Clock>,
    cfg: BrokerConfig,
    cache: RwLock<Vec<Option<Cached>>>,
    instance: String,
    pub stats: BrokerStats,
}

impl<S> std::fmt::Debug for TokenBroker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBroker")
            .field("table", &self.store.table())
            .field("pool_size", &self.cfg.pool_size)
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

enum Attempt {
    Got(SlotToken),
    Wait,
}

impl<S: TokenSource> TokenBroker<S> {
    pub fn new(
        store: TokenStore,
        source: Arc<S>,
        clock: Arc<dyn Clock>,
        mut cfg: BrokerConfig,
    ) -> Self {
        cfg.pool_size = cfg.pool_size.max(1);
        Self {
            cache: RwLock::new(vec![None; cfg.pool_size]),
            store,
            source,
            clock,
            cfg,
            instance: uuid::Uuid::new_v4().simple().to_string(),
            stats: BrokerStats::default(),
        }
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.cfg
    }

    pub fn store(&self) -> &TokenStore {
        &self.store
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn check_slot(&self, slot: usize) -> Result<(), BrokerError> {
        if slot < self.cfg.pool_size {
            Ok(())
        } else {
            Err(BrokerError::NoSuchSlot {
                slot,
                pool_size: self.cfg.pool_size,
            })
        }
    }

    /// The in-memory copy, if fresh enough to hand out without a read.
    pub fn cached(&self, slot: usize) -> Option<SlotToken> {
        let now = self.clock.now_ms();
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let c = cache.get(slot)?.as_ref()?;
        (now - c.read_at < ms(self.cfg.max_age)
            && c.token.expires_at - ms(self.cfg.expiry_skew) > now)
            .then(|| c.token.clone())
    }

    fn remember(&self, token: &SlotToken) {
        let now = self.clock.now_ms();
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get_mut(token.slot) {
            *c = Some(Cached {
                token: token.clone(),
                read_at: now,
            });
        }
    }

    fn forget(&self, slot: usize, version: u64) {
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get_mut(slot)
            && c.as_ref().is_some_and(|c| c.token.version <= version)
        {
            *c = None;
        }
    }

    /// The slot's current token: memory, else the item, else a refresh by
    /// whoever wins the lease.
    pub async fn token(&self, slot: usize) -> Result<SlotToken, BrokerError> {
        self.check_slot(slot)?;
        if let Some(t) = self.cached(slot) {
            return Ok(t);
        }
        self.obtain(slot, None).await
    }

    /// After a 401 for `version`: mark it stale, then get a newer token
    /// (single flight: one caller fetches, the rest wait for it).
    pub async fn replace_rejected(
        &self,
        slot: usize,
        version: u64,
    ) -> Result<SlotToken, BrokerError> {
        self.check_slot(slot)?;
        self.forget(slot, version);
        if self.store.mark_stale(slot, version).await? {
            self.stats.stale_marks.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                slot,
                version,
                "token rejected by Genesys Cloud; marked stale"
            );
        }
        self.obtain(slot, Some(version)).await
    }

    /// Runs `f` with the slot's token; after a 401 it gets the replacement and
    /// runs `f` once more, never twice. Returns the value and whether it retried.
    pub async fn call<T, E, F, Fut>(&self, slot: usize, mut f: F) -> Result<(T, bool), CallError<E>>
    where
        E: std::error::Error + Unauthorized + 'static,
        F: FnMut(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let t = self.token(slot).await?;
        match f(t.token.clone()).await {
            Ok(v) => Ok((v, false)),
            Err(e) if e.is_unauthorized() => {
                let fresh = self.replace_rejected(slot, t.version).await?;
                f(fresh.token)
                    .await
                    .map(|v| (v, true))
                    .map_err(CallError::Call)
            }
            Err(e) => Err(CallError::Call(e)),
        }
    }

    async fn obtain(&self, slot: usize, rejected: Option<u64>) -> Result<SlotToken, BrokerError> {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(25);
        loop {
            match self.attempt(slot, rejected).await? {
                Attempt::Got(t) => return Ok(t),
                Attempt::Wait => {}
            }
            if started.elapsed() >= self.cfg.wait_timeout {
                return Err(BrokerError::WaitTimedOut {
                    slot,
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            self.stats.waits.fetch_add(1, Ordering::Relaxed);
            let jitter = rand::rng().random_range(0.5..1.0);
            tokio::time::sleep(pause.mul_f64(jitter)).await;
            pause = (pause * 2).min(Duration::from_millis(400));
        }
    }

    fn newer(item: &TokenItem, rejected: Option<u64>) -> bool {
        rejected.is_none_or(|v| item.version > v)
    }

    fn slot_token(slot: usize, item: &TokenItem) -> Option<SlotToken> {
        Some(SlotToken {
            slot,
            version: item.version,
            token: item.token.clone()?,
            expires_at: item.expires_at,
        })
    }

    /// One pass: read; hand out a usable token; else try to refresh; else say wait.
    async fn attempt(&self, slot: usize, rejected: Option<u64>) -> Result<Attempt, BrokerError> {
        let now = self.clock.now_ms();
        let skew = ms(self.cfg.expiry_skew);
        self.stats.item_reads.fetch_add(1, Ordering::Relaxed);
        let item = self.store.read(slot).await?;
        if let Some(item) = &item
            && item.usable(now, skew)
            && Self::newer(item, rejected)
            && let Some(t) = Self::slot_token(slot, item)
        {
            // Past the margin the refresher should have acted; any reader may
            // take the lease as a backstop, and losers keep the current token.
            if item.expires_at - ms(self.cfg.refresh_margin) <= now
                && !item.lease_live(now)
                && let Ok(Some(fresh)) = self.refresh_if_needed(slot).await
            {
                self.remember(&fresh);
                return Ok(Attempt::Got(fresh));
            }
            self.remember(&t);
            return Ok(Attempt::Got(t));
        }
        match self.refresh_if_needed(slot).await {
            Ok(Some(t)) => {
                self.remember(&t);
                Ok(Attempt::Got(t))
            }
            Ok(None) => {
                // Lost: someone holds the lease, or the backoff forbids a fetch.
                let now = self.clock.now_ms();
                let current = self.store.read(slot).await?;
                match current {
                    Some(i) if i.usable(now, skew) && Self::newer(&i, rejected) => {
                        match Self::slot_token(slot, &i) {
                            Some(t) => {
                                self.remember(&t);
                                Ok(Attempt::Got(t))
                            }
                            None => Ok(Attempt::Wait),
                        }
                    }
                    Some(i) if !i.lease_live(now) && i.next_attempt_at.is_some_and(|n| n > now) => {
                        Err(BrokerError::BackingOff {
                            slot,
                            retry_at_ms: i.next_attempt_at.unwrap_or(now),
                            last_error: i.last_error.unwrap_or_default(),
                        })
                    }
                    _ => Ok(Attempt::Wait),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Takes the lease if a refresh is needed, fetches and publishes.
    /// `Ok(None)`: another writer holds the lease, the backoff is on, or no
    /// refresh was needed.
    pub async fn refresh_if_needed(&self, slot: usize) -> Result<Option<SlotToken>, BrokerError> {
        self.check_slot(slot)?;
        let now = self.clock.now_ms();
        let owner = format!("{}-{}", self.instance, uuid::Uuid::new_v4().simple());
        let lease = match self
            .store
            .try_acquire(
                slot,
                &owner,
                now,
                now + ms(self.cfg.refresh_margin),
                ms(self.cfg.lease),
            )
            .await?
        {
            Acquire::Won(lease) => lease,
            Acquire::Lost(_) => {
                self.stats.acquires_lost.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
        };
        self.stats.acquires_won.fetch_add(1, Ordering::Relaxed);
        self.fetch_and_publish(lease).await.map(Some)
    }

    async fn fetch_and_publish(&self, lease: Lease) -> Result<SlotToken, BrokerError> {
        let slot = lease.slot;
        self.stats.fetches.fetch_add(1, Ordering::Relaxed);
        // Never outlive the lease: a late publish would be refused anyway.
        let budget = self.cfg.lease.mul_f64(0.8);
        let fetched = match tokio::time::timeout(budget, self.source.fetch()).await {
            Ok(r) => r,
            Err(_) => Err(SourceError::Unavailable(format!(
                "token fetch did not finish within {} ms",
                budget.as_millis()
            ))),
        };
        match fetched {
            Ok(issued) => {
                let now = self.clock.now_ms();
                let version = self.store.publish(&lease, &issued, now).await?;
                tracing::info!(
                    slot,
                    version,
                    expires_in_s = issued.expires_in,
                    "published a new token"
                );
                Ok(SlotToken {
                    slot,
                    version,
                    token: issued.access_token,
                    expires_at: now + (issued.expires_in as i64) * 1000,
                })
            }
            Err(e) => {
                self.stats.fetch_failures.fetch_add(1, Ordering::Relaxed);
                let now = self.clock.now_ms();
                let next = now + ms(self.backoff(lease.failures + 1, &e));
                tracing::warn!(slot, error = %e, failures = lease.failures + 1, next_attempt_at = next, "token fetch failed; backing off");
                self.store
                    .record_failure(&lease, next, &e.to_string())
                    .await?;
                Err(BrokerError::Source { slot, source: e })
            }
        }
    }

    /// Exponential with jitter from the shared failure count, at least the
    /// server's `Retry-After`; a rejected client waits the maximum.
    fn backoff(&self, failures: u32, e: &SourceError) -> Duration {
        let max = self.cfg.backoff_max;
        let exp = self
            .cfg
            .backoff_base
            .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(20)))
            .min(max);
        let jittered = exp.mul_f64(rand::rng().random_range(0.5..=1.0));
        match e {
            SourceError::Rejected(_) => max,
            SourceError::RateLimited { retry_after, .. } => jittered.max(*retry_after),
            SourceError::Unavailable(_) => jittered,
        }
    }
}

/// The production broker: Genesys Cloud through `cfg`, DynamoDB and Secrets
/// Manager through `aws`. Build once per container.
pub fn genesys_broker(
    aws: &aws_config::SdkConfig,
    cfg: &crate::config::TokenConfig,
    clock: Arc<dyn Clock>,
) -> Result<TokenBroker<GenesysTokenSource>, reqwest::Error> {
    let client = crate::genesys::GenesysClient::new(
        cfg.hosts.clone(),
        crate::genesys::RetryPolicy::default(),
    )?;
    let credentials = crate::credentials::SecretsManagerCredentials::new(
        aws_sdk_secretsmanager::Client::new(aws),
        cfg.secret_id.clone(),
        cfg.credentials_max_age,
    );
    let store = TokenStore::new(
        aws_sdk_dynamodb::Client::new(aws),
        cfg.token_table.clone(),
        &cfg.secret_id,
    );
    Ok(TokenBroker::new(
        store,
        Arc::new(GenesysTokenSource::new(client, credentials)),
        clock,
        cfg.broker.clone(),
    ))
}
