//! The conversation-events handler, shared by the Lambda and the local stack:
//! parse, enrich (optional), plan, and apply in one transaction.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::analytics::{self, AnalyticsError, AnalyticsStore, Applied, KpiConfig};
use crate::clock::Clock;
use crate::enrich::{ApiAccess, EnrichError, Enricher, Lookup};
use crate::events::{self, Body, Event, Rejection};

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Malformed: retrying will not help; EventBridge sends it to the DLQ.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Enrichment(#[from] EnrichError),
    #[error(transparent)]
    Store(#[from] AnalyticsError),
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handled {
    pub event_id: String,
    pub applied: Applied,
    pub unknown_topic: bool,
    pub enriched: bool,
}

#[derive(Debug, Default)]
pub struct HandlerStats {
    pub processed: AtomicU64,
    pub duplicates: AtomicU64,
    pub unknown_topics: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
}

pub struct EventHandler<A> {
    store: AnalyticsStore,
    kpi: KpiConfig,
    enricher: Option<Enricher<A>>,
    clock: std::sync::Arc<dyn Clock>,
    pub stats: HandlerStats,
}

impl<A: ApiAccess> EventHandler<A> {
    pub fn new(
        store: AnalyticsStore,
        kpi: KpiConfig,
        enricher: Option<Enricher<A>>,
        clock: std::sync::Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            kpi,
            enricher,
            clock,
            stats: HandlerStats::default(),
        }
    }

    pub fn enricher(&self) -> Option<&Enricher<A>> {
        self.enricher.as_ref()
    }

    pub fn store(&self) -> &AnalyticsStore {
        &self.store
    }

    /// Handles one event. Errors mean "not counted": the caller fails the
    /// invocation so EventBridge retries it (and dead-letters it at the end).
    pub async fn handle(&self, raw: &Value, deadline: Instant) -> Result<Handled, HandleError> {
        let result = self.handle_inner(raw, deadline).await;
        let counter = match &result {
            Ok(h) if h.applied == Applied::Duplicate => &self.stats.duplicates,
            Ok(_) => &self.stats.processed,
            Err(HandleError::Rejected(_)) => &self.stats.rejected,
            Err(_) => &self.stats.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Ok(h) = &result
            && h.unknown_topic
            && h.applied == Applied::Processed
        {
            self.stats.unknown_topics.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn handle_inner(&self, raw: &Value, deadline: Instant) -> Result<Handled, HandleError> {
        let event = events::parse(raw)?;
        let mut enrichment = None;
        if let Some(enricher) = &self.enricher
            && analytics::wants_enrichment(&event, &self.kpi)
            && let Event::Conversation {
                conversation_id,
                body: Body::Flow(b),
                ..
            } = &event
        {
            let lookup = Lookup {
                conversation_id,
                flow_id: &b.flow_id,
                flow_start_ms: b.event_time - b.connected_duration_ms.unwrap_or(0),
            };
            enrichment = Some(enricher.enrich(&lookup, deadline).await?);
        }
        let plan = analytics::plan(&event, &self.kpi, enrichment.as_ref());
        let applied = self.store.apply(&plan, self.clock.now_ms()).await?;
        Ok(Handled {
            event_id: event.id().to_string(),
            applied,
            unknown_topic: matches!(event, Event::Unknown { .. }),
            enriched: enrichment.is_some(),
        })
    }
}
