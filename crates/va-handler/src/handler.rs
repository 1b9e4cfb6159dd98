//! The conversation-events handler, shared by the Lambda and the local stack:
//! parse, enrich (optional), plan, and apply in one transaction.

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use lambda_support::Clock;
use va_analytics::kpi::{self, KpiConfig};
use va_analytics::{AnalyticsError, AnalyticsStore, Applied};
use va_events::{self as events, Body, Event, Rejection};

use crate::enrich::{ApiAccess, EnrichError, Enricher, Lookup};

/// Why an event was not counted.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Malformed: retrying will not help.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Enrichment could not finish.
    #[error(transparent)]
    Enrichment(#[from] EnrichError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] AnalyticsError),
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handled {
    /// The EventBridge id.
    pub event_id: String,
    /// Counted now or before.
    pub applied: Applied,
    /// A topic this product does not read (acknowledged and counted).
    pub unknown_topic: bool,
    /// Enrichment ran.
    pub enriched: bool,
}

/// Parse, enrich, plan, apply. Build once per container.
pub struct EventHandler<A> {
    store: AnalyticsStore,
    kpi: KpiConfig,
    enricher: Option<Enricher<A>>,
    clock: std::sync::Arc<dyn Clock>,
}

impl<A: ApiAccess> EventHandler<A> {
    /// A handler writing to `store`, enriching through `enricher` if given.
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
        }
    }

    /// The store it writes to.
    pub fn store(&self) -> &AnalyticsStore {
        &self.store
    }

    /// The enricher, if enrichment is on.
    pub fn enricher(&self) -> Option<&Enricher<A>> {
        self.enricher.as_ref()
    }

    /// Handles one event. Errors mean "not counted": the caller fails the
    /// invocation, so Lambda's async retries try it again and finally send it
    /// to the on-failure destination.
    pub async fn handle(&self, raw: &Value, deadline: Instant) -> Result<Handled, HandleError> {
        let event = events::parse(raw)?;
        let mut enrichment = None;
        if let Some(enricher) = &self.enricher
            && kpi::wants_enrichment(&event, &self.kpi)
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
        let plan = kpi::plan(&event, &self.kpi, enrichment.as_ref());
        let applied = self.store.apply(&plan, self.clock.now_ms()).await?;
        Ok(Handled {
            event_id: event.id().to_string(),
            applied,
            unknown_topic: matches!(event, Event::Unknown { .. }),
            enriched: enrichment.is_some(),
        })
    }
}
