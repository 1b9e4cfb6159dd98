//! One scheduled refresher tick: for each slot, replace a dead token at once,
//! refresh inside the margin, otherwise leave it alone.

use serde::Serialize;

use crate::{BrokerError, SlotToken, TokenBroker, TokenHealth, TokenSource};
use token_store::TokenItem;

/// What a tick did to one slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SlotOutcome {
    /// A new token was published.
    Refreshed {
        /// missing, expiring, stale or dead.
        reason: &'static str,
    },
    /// Nothing to do, or someone else is doing it.
    Skipped {
        /// fresh, check_failed, lease_held_or_backing_off.
        reason: &'static str,
    },
    /// This tick's refresh failed.
    Failed {
        /// The broker's error.
        error: String,
    },
}

/// One slot's result; one JSON log line each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotReport {
    /// The slot.
    pub slot: usize,
    /// What happened.
    #[serde(flatten)]
    pub outcome: SlotOutcome,
    /// The slot's version afterwards.
    pub version: Option<u64>,
    /// Seconds until the slot's token expires.
    pub seconds_to_expiry: Option<i64>,
    /// Token requests made for this slot.
    pub token_requests: u64,
}

/// One tick's results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// One per slot.
    pub slots: Vec<SlotReport>,
}

impl TickReport {
    fn count(&self, f: impl Fn(&SlotOutcome) -> bool) -> usize {
        self.slots.iter().filter(|s| f(&s.outcome)).count()
    }

    /// Slots refreshed.
    pub fn refreshed(&self) -> usize {
        self.count(|o| matches!(o, SlotOutcome::Refreshed { .. }))
    }

    /// Slots that failed.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, SlotOutcome::Failed { .. }))
    }

    /// Slots left alone.
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, SlotOutcome::Skipped { .. }))
    }
}

impl<S: TokenSource> TokenBroker<S> {
    /// The refresher's work for every slot.
    pub async fn tick(&self) -> TickReport {
        let mut report = TickReport::default();
        for slot in 0..self.config().pool_size {
            report.slots.push(self.tick_slot(slot).await);
        }
        report
    }

    async fn tick_slot(&self, slot: usize) -> SlotReport {
        let fetches_before = self.fetches();
        let (outcome, token) = self.tick_outcome(slot).await;
        let now = self.now_ms();
        let (version, seconds_to_expiry) = match &token {
            Some(t) => (Some(t.version), Some((t.expires_at - now) / 1000)),
            None => match self.store().read(slot).await {
                Ok(Some(i)) if i.token.is_some() => {
                    (Some(i.version), Some((i.expires_at - now) / 1000))
                }
                _ => (None, None),
            },
        };
        let report = SlotReport {
            slot,
            outcome,
            version,
            seconds_to_expiry,
            token_requests: self.fetches() - fetches_before,
        };
        match &report.outcome {
            SlotOutcome::Failed { error } => {
                tracing::error!(slot, version, seconds_to_expiry, error = %error, "token slot refresh failed")
            }
            SlotOutcome::Refreshed { reason, .. } => tracing::info!(
                slot,
                version,
                seconds_to_expiry,
                reason,
                "token slot refreshed"
            ),
            SlotOutcome::Skipped { reason } => tracing::info!(
                slot,
                version,
                seconds_to_expiry,
                reason,
                "token slot skipped"
            ),
        }
        report
    }

    async fn tick_outcome(&self, slot: usize) -> (SlotOutcome, Option<SlotToken>) {
        let failed = |e: BrokerError| {
            (
                SlotOutcome::Failed {
                    error: e.to_string(),
                },
                None,
            )
        };
        let item = match self.store().read(slot).await {
            Ok(i) => i,
            Err(e) => return failed(e.into()),
        };
        let now = self.now_ms();
        let fallback = i64::try_from(
            self.config()
                .refresh_margin
                .unwrap_or(std::time::Duration::from_secs(600))
                .as_millis(),
        )
        .unwrap_or(i64::MAX);
        let (reason, dead_version) =
            match self.why_refresh(slot, item.as_ref(), now, fallback).await {
                Ok(why) => why,
                Err(skipped) => return (skipped, None),
            };
        if let Some(v) = dead_version
            && let Err(e) = self.store().mark_stale(slot, v).await
        {
            return failed(e.into());
        }
        match self.refresh_if_needed(slot).await {
            Ok(Some(t)) => (SlotOutcome::Refreshed { reason }, Some(t)),
            Ok(None) => (
                SlotOutcome::Skipped {
                    reason: "lease_held_or_backing_off",
                },
                None,
            ),
            Err(e) => failed(e),
        }
    }

    /// Why the slot's token is to be replaced, and the version to mark
    /// stale first (a dead token); `Err`: it is not (fresh, or its check
    /// failed and it is kept).
    async fn why_refresh(
        &self,
        slot: usize,
        item: Option<&TokenItem>,
        now: i64,
        fallback: i64,
    ) -> Result<(&'static str, Option<u64>), SlotOutcome> {
        match item {
            Some(i)
                if i.token.is_some()
                    && i.stale_version != Some(i.version)
                    && !i.due(now, fallback) =>
            {
                // Outside the margin: only a dead token needs replacing.
                let Some(token) = i.token.clone() else {
                    return Err(SlotOutcome::Skipped { reason: "fresh" });
                };
                match self.source().check(&token).await {
                    Ok(TokenHealth::Alive) => Err(SlotOutcome::Skipped { reason: "fresh" }),
                    Ok(TokenHealth::Dead) => Ok(("dead", Some(i.version))),
                    Err(e) => {
                        tracing::warn!(slot, error = %e, "token check failed; keeping the token");
                        Err(SlotOutcome::Skipped {
                            reason: "check_failed",
                        })
                    }
                }
            }
            Some(i) if i.token.is_some() && i.stale_version == Some(i.version) => {
                Ok(("stale", None))
            }
            Some(i) if i.token.is_some() => Ok(("expiring", None)),
            _ => Ok(("missing", None)),
        }
    }
}
