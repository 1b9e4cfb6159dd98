//! The conversation-events handler, shared by the Lambda and the local stack:
//! parse, read the conversation's state when the event needs it, plan, and
//! apply in one transaction. No Platform API call: the final intent and bot
//! result come later from the enrichment sweeper, so a lagging or failing
//! analytics API never costs a count.

use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use lambda_support::Clock;
use va_analytics::kpi::{self, KpiConfig};
use va_analytics::{AnalyticsError, AnalyticsStore, Applied, MARKER_TTL_S, StateRead};
use va_events::{self as events, Event, Rejection};

use crate::tenancy::{RouteError, Tenancy};
use std::collections::BTreeMap;

/// Why an event was not counted.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Malformed: retrying will not help.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The store failed, or kept conflicting until the deadline.
    #[error(transparent)]
    Store(#[from] AnalyticsError),
    /// The tenant registry could not be read: the event's org is unknown yet.
    #[error("the tenant registry could not be read: {0}")]
    Registry(token_store::StoreError),
}

impl From<RouteError> for HandleError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::Rejected(r) => HandleError::Rejected(r),
            RouteError::Registry(e) => HandleError::Registry(e),
            RouteError::Offboarded(org) => HandleError::Rejected(Rejection {
                event_id: String::new(),
                field: "source".into(),
                problem: format!("names org {org}, which is offboarded"),
            }),
        }
    }
}

impl HandleError {
    /// The Lambda error type: which part failed.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandleError::Rejected(_) => "Rejected",
            HandleError::Store(_) | HandleError::Registry(_) => "Store",
        }
    }
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handled {
    /// The EventBridge id.
    pub event_id: String,
    /// The org it counted for (`""`: the implicit org of a single-org deployment).
    pub org_id: String,
    /// Counted now or before.
    pub applied: Applied,
    /// A topic this product does not read (acknowledged and counted).
    pub unknown_topic: bool,
    /// Writes refused and retried: another event of the conversation changed
    /// its state first, another transaction held an item, or DynamoDB
    /// throttled one.
    pub conflicts: u32,
}

/// Where an event goes.
enum Route {
    /// Counted for this org, in its view of the store.
    Count(String, AnalyticsStore),
    /// Dropped: its org is offboarded.
    Drop(Handled),
}

/// Where a batch's event goes.
enum Sorted {
    /// Handled (or refused) on its own.
    Done(Result<Handled, HandleError>),
    /// Planned, to be written with the org's other events: (org, event, plan).
    Together(Box<(String, Event, kpi::Plan)>),
}

/// Parse, plan, apply. Build once per container.
pub struct EventHandler {
    store: AnalyticsStore,
    kpi: KpiConfig,
    clock: std::sync::Arc<dyn Clock>,
    tenancy: Tenancy,
}

/// First pause after a conflict; doubles, jittered, up to [`MAX_CONFLICT_PAUSE`].
const FIRST_CONFLICT_PAUSE: Duration = Duration::from_millis(10);
/// Longest pause between two tries after conflicts.
const MAX_CONFLICT_PAUSE: Duration = Duration::from_millis(500);

/// Jittered, doubling pauses between tries after a refusal.
struct Backoff {
    pause: Duration,
    tries: u32,
}

impl Backoff {
    fn new() -> Self {
        Self {
            pause: FIRST_CONFLICT_PAUSE,
            tries: 0,
        }
    }

    /// Waits before the next try; `false` (without waiting) when the pause
    /// would reach `deadline`.
    async fn wait(&mut self, deadline: Instant) -> bool {
        self.tries = self.tries.saturating_add(1);
        let wait = self.pause.mul_f64(rand::rng().random_range(0.5..1.0));
        if Instant::now()
            .checked_add(wait)
            .is_none_or(|t| t >= deadline)
        {
            return false;
        }
        tokio::time::sleep(wait).await;
        self.pause = (self.pause * 2).min(MAX_CONFLICT_PAUSE);
        true
    }
}

impl EventHandler {
    /// A handler writing to `store` for one implicit org.
    pub fn new(store: AnalyticsStore, kpi: KpiConfig, clock: std::sync::Arc<dyn Clock>) -> Self {
        Self {
            store,
            kpi,
            clock,
            tenancy: Tenancy::Single,
        }
    }

    /// The same handler, routing events by `tenancy`.
    pub fn with_tenancy(self, tenancy: Tenancy) -> Self {
        Self { tenancy, ..self }
    }

    /// The store it writes to (the implicit org's keys; see
    /// [`AnalyticsStore::for_org`]).
    pub fn store(&self) -> &AnalyticsStore {
        &self.store
    }

    /// The org `event` counts for and that org's view of the store, or
    /// the event dropped (its org is offboarded).
    async fn route(&self, raw: &Value, event: &Event) -> Result<Route, HandleError> {
        match self.tenancy.org_of(raw).await {
            Ok(org) => {
                let store = self.store.for_org(&org);
                Ok(Route::Count(org, store))
            }
            Err(RouteError::Offboarded(org)) => {
                tracing::info!(event_id = event.id(), org_id = %org, "dropped: the org is offboarded");
                Ok(Route::Drop(Handled {
                    event_id: event.id().to_string(),
                    org_id: org,
                    applied: Applied::Dropped,
                    unknown_topic: matches!(event, Event::Unknown { .. }),
                    conflicts: 0,
                }))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Handles one event. Errors mean "not counted": the caller fails the
    /// invocation, so Lambda's async retries try it again and finally send it
    /// to the on-failure destination. A write conflict or throttle is retried
    /// here, with jittered backoff, until `deadline`: the marker makes a retry
    /// safe. The SDK retries neither a cancelled transaction nor (beyond its
    /// own three attempts) a throttle.
    pub async fn handle(&self, raw: &Value, deadline: Instant) -> Result<Handled, HandleError> {
        let event = self.parse(raw)?;
        self.store.check_layout().await?;
        match self.route(raw, &event).await? {
            Route::Count(org, store) => self.handle_event(&store, org, &event, deadline).await,
            Route::Drop(dropped) => Ok(dropped),
        }
    }

    /// Parses and bounds an event: its `eventTime` must lie within what the
    /// markers remember and at most five minutes ahead of this clock.
    fn parse(&self, raw: &Value) -> Result<Event, Rejection> {
        let event = events::parse(raw)?;
        events::check_event_time(
            &event,
            self.clock.now_ms(),
            MARKER_TTL_S.saturating_mul(1000),
        )?;
        Ok(event)
    }

    async fn handle_event(
        &self,
        store: &AnalyticsStore,
        org_id: String,
        event: &Event,
        deadline: Instant,
    ) -> Result<Handled, HandleError> {
        let event = event.clone();
        let stateful = kpi::needs_state(&event, &self.kpi);
        let conversation = match &event {
            Event::Conversation {
                conversation_id, ..
            } => Some(conversation_id.as_str()),
            Event::Unknown { .. } => None,
        };
        let mut backoff = Backoff::new();
        loop {
            let read = match (stateful, conversation) {
                (true, Some(c)) => store.read_state(c).await?,
                _ => StateRead::default(),
            };
            let mut plan = kpi::plan(&event, &self.kpi, stateful.then_some(&read.state));
            self.admit_names(store, &mut plan, deadline).await?;
            if plan.is_noop() {
                return Ok(Handled {
                    event_id: event.id().to_string(),
                    org_id,
                    applied: Applied::Processed,
                    unknown_topic: matches!(event, Event::Unknown { .. }),
                    conflicts: backoff.tries,
                });
            }
            match store
                .apply(&plan, self.clock.now_ms(), read.version, None)
                .await
            {
                Ok(applied) => {
                    return Ok(Handled {
                        event_id: event.id().to_string(),
                        org_id,
                        applied,
                        unknown_topic: matches!(event, Event::Unknown { .. }),
                        conflicts: backoff.tries,
                    });
                }
                Err(e) if e.is_retryable() => {
                    if !backoff.wait(deadline).await {
                        return Err(AnalyticsError::Conflict {
                            reason: format!(
                                "{e}; still refused after {} tries at the deadline",
                                backoff.tries
                            ),
                        }
                        .into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Handles a batch (the SQS path): one result per event, in order.
    /// Events that read their conversation's state go one by one; the rest
    /// are written together, markers and merged bucket deltas in as few
    /// transactions of at most 100 items as they fit, duplicates found from
    /// the cancellation reasons and left out. Conflicts and throttles are
    /// retried until `deadline`; what still fails is reported per event.
    pub async fn handle_batch(
        &self,
        raw: &[Value],
        deadline: Instant,
    ) -> Vec<Result<Handled, HandleError>> {
        if let Err(e) = self.store.check_layout().await {
            return raw.iter().map(|_| Err(e.clone().into())).collect();
        }
        let mut results: Vec<Option<Result<Handled, HandleError>>> =
            raw.iter().map(|_| None).collect();
        // Per org: (index, event, plan).
        let mut together: BTreeMap<String, Vec<(usize, Event, kpi::Plan)>> = BTreeMap::new();
        for (i, r) in raw.iter().enumerate() {
            match self.sort_event(r, deadline).await {
                Sorted::Done(result) => results[i] = Some(result),
                Sorted::Together(planned) => {
                    let (org, event, plan) = *planned;
                    together.entry(org).or_default().push((i, event, plan));
                }
            }
        }
        for (org, events) in together {
            for (i, r) in self.apply_together(&org, events, deadline).await {
                results[i] = Some(r);
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(AnalyticsError::Conflict {
                        reason: "not attempted".into(),
                    }
                    .into())
                })
            })
            .collect()
    }

    /// An event of a batch handled on its own (rejected, dropped, reading
    /// state, or changing nothing), or planned to be written together.
    async fn sort_event(&self, r: &Value, deadline: Instant) -> Sorted {
        let routed = match self.parse(r) {
            Err(e) => Err(e.into()),
            Ok(event) => self.route(r, &event).await.map(|route| (event, route)),
        };
        let (event, org, store) = match routed {
            Ok((_, Route::Drop(dropped))) => return Sorted::Done(Ok(dropped)),
            Ok((event, Route::Count(org, store))) => (event, org, store),
            Err(e) => return Sorted::Done(Err(e)),
        };
        if kpi::needs_state(&event, &self.kpi) {
            return Sorted::Done(self.handle_event(&store, org, &event, deadline).await);
        }
        let mut plan = kpi::plan(&event, &self.kpi, None);
        if let Err(e) = self.admit_names(&store, &mut plan, deadline).await {
            return Sorted::Done(Err(e.into()));
        }
        if plan.is_noop() {
            return Sorted::Done(Ok(Handled {
                event_id: event.id().to_string(),
                org_id: org,
                applied: Applied::Processed,
                unknown_topic: matches!(event, Event::Unknown { .. }),
                conflicts: 0,
            }));
        }
        Sorted::Together(Box::new((org, event, plan)))
    }

    /// One org's planned events, in chunks of at most 100 items: one
    /// transaction a chunk, one org's items per transaction.
    async fn apply_together(
        &self,
        org: &str,
        events: Vec<(usize, Event, kpi::Plan)>,
        deadline: Instant,
    ) -> Vec<(usize, Result<Handled, HandleError>)> {
        let store = self.store.for_org(org);
        let mut out = Vec::new();
        let mut chunk: Vec<(usize, Event, kpi::Plan)> = Vec::new();
        let mut rest = events.into_iter().peekable();
        while let Some(next) = rest.next() {
            chunk.push(next);
            let full = rest.peek().is_none_or(|(_, _, p)| {
                va_analytics::batch_items(chunk.iter().map(|(_, _, q)| q).chain([p])) > 100
            });
            if full {
                let applied = self
                    .apply_chunk(&store, org, std::mem::take(&mut chunk), deadline)
                    .await;
                out.extend(applied);
            }
        }
        out
    }

    /// [`AnalyticsStore::admit_names`], retried on a throttle until `deadline`.
    async fn admit_names(
        &self,
        store: &AnalyticsStore,
        plan: &mut kpi::Plan,
        deadline: Instant,
    ) -> Result<(), AnalyticsError> {
        let mut backoff = Backoff::new();
        loop {
            match store.admit_names(plan).await {
                Err(e) if e.is_retryable() && backoff.wait(deadline).await => {}
                other => return other,
            }
        }
    }

    async fn apply_chunk(
        &self,
        store: &AnalyticsStore,
        org_id: &str,
        chunk: Vec<(usize, Event, kpi::Plan)>,
        deadline: Instant,
    ) -> Vec<(usize, Result<Handled, HandleError>)> {
        let plans: Vec<kpi::Plan> = chunk.iter().map(|(_, _, p)| p.clone()).collect();
        let mut backoff = Backoff::new();
        let outcome = loop {
            match store.apply_batch(&plans, self.clock.now_ms()).await {
                Ok(applied) => break Ok(applied),
                Err(e) if e.is_retryable() => {
                    if !backoff.wait(deadline).await {
                        break Err(e);
                    }
                }
                Err(e) => break Err(e),
            }
        };
        let conflicts = backoff.tries;
        chunk
            .into_iter()
            .enumerate()
            .map(|(k, (i, event, _))| {
                let r = match &outcome {
                    Ok(applied) => Ok(Handled {
                        event_id: event.id().to_string(),
                        org_id: org_id.to_string(),
                        applied: applied.get(k).copied().unwrap_or(Applied::Duplicate),
                        unknown_topic: matches!(event, Event::Unknown { .. }),
                        // Shared by the chunk; counted once, on its first event.
                        conflicts: if k == 0 { conflicts } else { 0 },
                    }),
                    Err(e) => Err(HandleError::Store(e.clone())),
                };
                (i, r)
            })
            .collect()
    }
}
