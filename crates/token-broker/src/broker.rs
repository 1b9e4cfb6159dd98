//! The broker's algorithm: memory, then the item, then a refresh by whoever
//! wins the lease; after a 401, mark stale and recover single-flight.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use genesys::IssuedToken;
use lambda_support::Clock;
use rand::Rng;
use token_store::{Acquire, Lease, NewToken, TokenItem, TokenStore};

use crate::{
    AccessToken, BrokerConfig, BrokerError, CallError, SlotToken, SourceError, TokenSource,
    Unauthorized,
};

#[derive(Debug, Clone)]
struct Cached {
    token: SlotToken,
    read_at: i64,
}

/// One container's view of the fleet's token slots. Build once per container.
pub struct TokenBroker<S> {
    store: TokenStore,
    source: Arc<S>,
    clock: Arc<dyn Clock>,
    cfg: BrokerConfig,
    cache: RwLock<Vec<Option<Cached>>>,
    instance: String,
    /// Token requests this instance made (the refresher reports them).
    fetches: AtomicU64,
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
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn secs_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

enum Attempt {
    Got(SlotToken),
    Wait,
}

impl<S: TokenSource> TokenBroker<S> {
    /// A broker over `store`, fetching from `source` when it wins the lease.
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
            fetches: AtomicU64::new(0),
        }
    }

    /// Token requests this instance has made.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The protocol's tuning.
    pub fn config(&self) -> &BrokerConfig {
        &self.cfg
    }

    /// The token items.
    pub fn store(&self) -> &TokenStore {
        &self.store
    }

    /// Where tokens come from.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The broker's clock.
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

    /// The in-memory copy however old, if unexpired and newer than `rejected`:
    /// what a caller gets when the item cannot be read.
    fn last_known(&self, slot: usize, rejected: Option<u64>) -> Option<SlotToken> {
        let now = self.clock.now_ms();
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let c = cache.get(slot)?.as_ref()?;
        (c.token.expires_at - ms(self.cfg.expiry_skew) > now
            && rejected.is_none_or(|v| c.token.version > v))
        .then(|| c.token.clone())
    }

    /// For items published before `refresh_at` existed.
    fn fallback_margin_ms(&self) -> i64 {
        ms(self.cfg.refresh_margin.unwrap_or(Duration::from_secs(600)))
    }

    fn default_deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.cfg.wait_timeout
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
    /// whoever wins the lease; waits at most the configured `wait_timeout`.
    pub async fn token(&self, slot: usize) -> Result<SlotToken, BrokerError> {
        self.token_by(slot, self.default_deadline()).await
    }

    /// [`Self::token`], giving up at `deadline` (the caller's invocation).
    /// When the item cannot be read or no new token comes, an unexpired
    /// in-memory token is served instead of an error.
    pub async fn token_by(
        &self,
        slot: usize,
        deadline: tokio::time::Instant,
    ) -> Result<SlotToken, BrokerError> {
        self.check_slot(slot)?;
        if let Some(t) = self.cached(slot) {
            return Ok(t);
        }
        self.obtain_or_last_known(slot, None, deadline).await
    }

    async fn obtain_or_last_known(
        &self,
        slot: usize,
        rejected: Option<u64>,
        deadline: tokio::time::Instant,
    ) -> Result<SlotToken, BrokerError> {
        match self.obtain(slot, rejected, deadline).await {
            Ok(t) => Ok(t),
            Err(e @ BrokerError::NoSuchSlot { .. }) => Err(e),
            Err(e) => match self.last_known(slot, rejected) {
                Some(t) => {
                    tracing::warn!(slot, version = t.version, error = %e, "serving the in-memory token: the token item is out of reach");
                    Ok(t)
                }
                None => Err(e),
            },
        }
    }

    /// After a 401 for `version`: mark it stale, then get a newer token
    /// (single flight: one caller fetches, the rest wait for it).
    pub async fn replace_rejected(
        &self,
        slot: usize,
        version: u64,
    ) -> Result<SlotToken, BrokerError> {
        self.replace_rejected_by(slot, version, self.default_deadline())
            .await
    }

    /// [`Self::replace_rejected`], giving up at `deadline`.
    pub async fn replace_rejected_by(
        &self,
        slot: usize,
        version: u64,
        deadline: tokio::time::Instant,
    ) -> Result<SlotToken, BrokerError> {
        self.check_slot(slot)?;
        self.forget(slot, version);
        match self.store.mark_stale(slot, version).await {
            Ok(true) => tracing::info!(
                slot,
                version,
                "token rejected by Genesys Cloud; marked stale"
            ),
            Ok(false) => {}
            // The lease still guards the fetch; the refresher's check finds
            // the dead token if nobody can mark it.
            Err(e) => {
                tracing::warn!(slot, version, error = %e, "could not mark the rejected token stale")
            }
        }
        self.obtain_or_last_known(slot, Some(version), deadline)
            .await
    }

    /// Runs `f` with the slot's token; after a 401 it gets the replacement and
    /// runs `f` once more, never twice. Returns the value and whether it retried.
    pub async fn call<T, E, F, Fut>(&self, slot: usize, f: F) -> Result<(T, bool), CallError<E>>
    where
        E: std::error::Error + Unauthorized + 'static,
        F: FnMut(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_by(slot, self.default_deadline(), f).await
    }

    /// [`Self::call`], waiting for tokens at most until `deadline`.
    pub async fn call_by<T, E, F, Fut>(
        &self,
        slot: usize,
        deadline: tokio::time::Instant,
        mut f: F,
    ) -> Result<(T, bool), CallError<E>>
    where
        E: std::error::Error + Unauthorized + 'static,
        F: FnMut(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let t = self.token_by(slot, deadline).await?;
        match f(t.token.clone()).await {
            Ok(v) => Ok((v, false)),
            Err(e) if e.is_unauthorized() => {
                let fresh = self.replace_rejected_by(slot, t.version, deadline).await?;
                f(fresh.token)
                    .await
                    .map(|v| (v, true))
                    .map_err(CallError::Call)
            }
            Err(e) => Err(CallError::Call(e)),
        }
    }

    async fn obtain(
        &self,
        slot: usize,
        rejected: Option<u64>,
        deadline: tokio::time::Instant,
    ) -> Result<SlotToken, BrokerError> {
        let started = tokio::time::Instant::now();
        let deadline = deadline.min(started + self.cfg.wait_timeout);
        let mut pause = Duration::from_millis(25);
        loop {
            match self.attempt(slot, rejected, deadline).await? {
                Attempt::Got(t) => return Ok(t),
                Attempt::Wait => {}
            }
            let wait = pause.mul_f64(rand::rng().random_range(0.5..1.0));
            if tokio::time::Instant::now() + wait >= deadline {
                return Err(BrokerError::WaitTimedOut {
                    slot,
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            tokio::time::sleep(wait).await;
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
    async fn attempt(
        &self,
        slot: usize,
        rejected: Option<u64>,
        deadline: tokio::time::Instant,
    ) -> Result<Attempt, BrokerError> {
        let now = self.clock.now_ms();
        let skew = ms(self.cfg.expiry_skew);
        let item = self.store.read(slot).await?;
        if let Some(i) = &item
            && i.stale_version == Some(i.version)
        {
            // Someone got a 401 for it: never serve it from memory either.
            self.forget(slot, i.version);
        }
        if let Some(item) = &item
            && item.usable(now, skew)
            && Self::newer(item, rejected)
            && let Some(t) = Self::slot_token(slot, item)
        {
            // Due: the refresher should have acted; any reader may take the
            // lease as a backstop, and losers keep the current token.
            // Only with time for a whole fetch: a fetch cut short by this
            // caller's deadline would hold the lease for nothing.
            if item.due(now, self.fallback_margin_ms())
                && !item.lease_live(now)
                && deadline.saturating_duration_since(tokio::time::Instant::now())
                    >= self.cfg.lease.mul_f64(0.8)
                && let Ok(Some(fresh)) = self.refresh_by(slot, deadline).await
            {
                self.remember(&fresh);
                return Ok(Attempt::Got(fresh));
            }
            self.remember(&t);
            return Ok(Attempt::Got(t));
        }
        match self.refresh_by(slot, deadline).await {
            Ok(Some(t)) => {
                self.remember(&t);
                Ok(Attempt::Got(t))
            }
            // Our lease ran out before we published: the next holder's
            // token is the one to wait for.
            Err(BrokerError::Store(token_store::StoreError::LeaseLost { .. })) => Ok(Attempt::Wait),
            // Lost: someone holds the lease, or the backoff forbids a fetch.
            Ok(None) => self.after_lost_lease(slot, rejected).await,
            Err(e) => Err(e),
        }
    }

    /// After losing the lease race: the winner's token if it is usable,
    /// the backoff if one is on, else wait.
    async fn after_lost_lease(
        &self,
        slot: usize,
        rejected: Option<u64>,
    ) -> Result<Attempt, BrokerError> {
        let skew = ms(self.cfg.expiry_skew);
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

    /// Takes the lease if a refresh is needed, fetches and publishes.
    /// `Ok(None)`: another writer holds the lease, the backoff is on, or no
    /// refresh was needed.
    pub async fn refresh_if_needed(&self, slot: usize) -> Result<Option<SlotToken>, BrokerError> {
        self.refresh_by(slot, tokio::time::Instant::now() + self.cfg.lease)
            .await
    }

    async fn refresh_by(
        &self,
        slot: usize,
        deadline: tokio::time::Instant,
    ) -> Result<Option<SlotToken>, BrokerError> {
        self.check_slot(slot)?;
        let now = self.clock.now_ms();
        let owner = format!("{}-{}", self.instance, uuid::Uuid::new_v4().simple());
        let lease = match self
            .store
            .try_acquire(
                slot,
                &owner,
                now,
                now.saturating_add(self.fallback_margin_ms()),
                ms(self.cfg.lease),
            )
            .await?
        {
            Acquire::Won(lease) => lease,
            Acquire::Lost => return Ok(None),
        };
        self.fetch_and_publish(lease, deadline).await.map(Some)
    }

    async fn fetch_and_publish(
        &self,
        lease: Lease,
        deadline: tokio::time::Instant,
    ) -> Result<SlotToken, BrokerError> {
        let slot = lease.slot;
        // Never outlive the lease (a late publish would be refused anyway)
        // nor the caller's deadline.
        let full = self.cfg.lease.mul_f64(0.8);
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let budget = full.min(left);
        if budget.is_zero() {
            self.store.release(&lease).await?;
            return Err(BrokerError::WaitTimedOut { slot, waited_ms: 0 });
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = match tokio::time::timeout(budget, self.source.fetch()).await {
            Ok(r) => r,
            Err(_) if budget < full => {
                // The caller's deadline, not the endpoint: no fleet backoff.
                self.store.release(&lease).await?;
                return Err(BrokerError::WaitTimedOut {
                    slot,
                    waited_ms: u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
                });
            }
            Err(_) => Err(SourceError::Unavailable(format!(
                "token fetch did not finish within {} ms",
                budget.as_millis()
            ))),
        };
        match fetched {
            Ok(issued) => self.publish_issued(&lease, issued).await,
            Err(e) => Err(self.record_fetch_failure(&lease, e).await),
        }
    }

    /// Publishes a fetched token under `lease`, refreshing at its margin.
    async fn publish_issued(
        &self,
        lease: &Lease,
        issued: IssuedToken,
    ) -> Result<SlotToken, BrokerError> {
        let slot = lease.slot;
        let now = self.clock.now_ms();
        let expires_at = now.saturating_add(secs_ms(issued.expires_in));
        let margin = self.cfg.margin_for(Duration::from_secs(issued.expires_in));
        if let Some(why) = margin.clamped {
            tracing::warn!(slot, expires_in_s = issued.expires_in, margin_s = margin.before_expiry.as_secs(), reason = ?why, "the refresh margin was clamped to fit this token's lifetime");
        }
        let refresh_at = expires_at.saturating_sub(ms(margin.before_expiry));
        let version = self
            .store
            .publish(
                lease,
                NewToken {
                    access_token: &issued.access_token,
                    token_type: &issued.token_type,
                    expires_at,
                    refresh_at,
                },
                now,
            )
            .await?;
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
            expires_at,
        })
    }

    /// Records a failed fetch on the slot, with the next attempt's time
    /// from the shared failure count: every container backs off together.
    async fn record_fetch_failure(&self, lease: &Lease, e: SourceError) -> BrokerError {
        let slot = lease.slot;
        let now = self.clock.now_ms();
        let next = now.saturating_add(ms(self.backoff(lease.failures.saturating_add(1), &e)));
        tracing::warn!(slot, error = %e, failures = lease.failures + 1, next_attempt_at = next, "token fetch failed; backing off");
        match self
            .store
            .record_failure(lease, next, e.code(), &e.to_string())
            .await
        {
            Ok(_) => BrokerError::Source { slot, source: e },
            Err(store) => store.into(),
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
            SourceError::RateLimited { retry_after, .. } => jittered.max(*retry_after).min(max),
            SourceError::Unavailable(_) => jittered,
        }
    }
}
