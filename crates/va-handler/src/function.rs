//! What the conversation-events Lambda answers for one invocation: one
//! EventBridge event (async invoke) or an SQS batch. A malformed event is
//! acknowledged and put on the dead-letter queue with its reason at once;
//! only a store failure fails the invocation (Lambda retries it, then sends
//! it to the on-failure destination) or its batch item (SQS redelivers it).

use std::time::Duration;

use lambda_support::{Clock, SystemClock, emf};
use serde_json::{Value, json};
use tokio::time::Instant;
use va_analytics::Applied;
use va_events::Rejection;

use crate::dead_letter::{DeadLetterError, DeadLetterQueue};
use crate::{EventHandler, HandleError};

/// Leaves this much of the invocation for writing the result.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);
/// Lambda's longest invocation: a bound on any deadline read from a context.
const MAX_INVOCATION: Duration = Duration::from_secs(900);

/// When to stop: `remaining` (at most 15 minutes) less the margin.
fn deadline(started: Instant, remaining: Duration) -> Instant {
    started
        + remaining
            .min(MAX_INVOCATION)
            .saturating_sub(DEADLINE_MARGIN)
}

/// Why an invocation failed; `error_type` is what Lambda records.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The event was not counted; a retry may count it.
    #[error(transparent)]
    Handle(#[from] HandleError),
    /// A rejected event could not be put on the dead-letter queue; a retry
    /// puts it there.
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
}

impl InvocationError {
    /// `Store`, `Rejected` or `DeadLetter`.
    pub fn error_type(&self) -> &'static str {
        match self {
            InvocationError::Handle(e) => e.error_type(),
            InvocationError::DeadLetter(_) => "DeadLetter",
        }
    }
}

/// The function: the handler core and, in Lambda, the dead-letter queue.
pub struct ConversationEvents {
    handler: EventHandler,
    dead_letters: Option<DeadLetterQueue>,
}

/// An SQS event: `{"Records": [{"eventSource": "aws:sqs", ...}]}`.
pub fn is_sqs_batch(payload: &Value) -> bool {
    payload
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs")
}

impl ConversationEvents {
    /// Without a queue, rejected events are logged and acknowledged (local runs).
    pub fn new(handler: EventHandler, dead_letters: Option<DeadLetterQueue>) -> Self {
        Self {
            handler,
            dead_letters,
        }
    }

    /// The handler core.
    pub fn handler(&self) -> &EventHandler {
        &self.handler
    }

    /// One invocation, with `remaining` time.
    pub async fn invoke(
        &self,
        payload: &Value,
        remaining: Duration,
    ) -> Result<Value, InvocationError> {
        if is_sqs_batch(payload) {
            return Ok(self.on_batch(payload, remaining).await);
        }
        let started = Instant::now();
        let result = self
            .handler
            .handle(payload, deadline(started, remaining))
            .await;
        let rejected = match &result {
            Err(HandleError::Rejected(r)) => {
                self.dead_letter(payload, r).await?;
                true
            }
            _ => false,
        };
        let conflicts = result.as_ref().map_or(0, |h| h.conflicts);
        let (processed, duplicate, unknown, dropped) = match &result {
            Ok(h) => match h.applied {
                Applied::Processed => (1.0, 0.0, f64::from(u8::from(h.unknown_topic)), 0.0),
                Applied::Duplicate => (0.0, 1.0, 0.0, 0.0),
                Applied::Dropped => (0.0, 0.0, 0.0, 1.0),
            },
            Err(_) => (0.0, 0.0, 0.0, 0.0),
        };
        metrics(&[
            ("EventsProcessed", processed),
            ("DuplicateEvents", duplicate),
            ("OffboardedOrgEvents", dropped),
            ("UnknownTopics", unknown),
            ("RejectedEvents", f64::from(u8::from(rejected))),
            ("WriteConflictsRetried", f64::from(conflicts)),
            (
                "ProcessingLatencyMilliseconds",
                started.elapsed().as_secs_f64() * 1000.0,
            ),
        ]);
        match result {
            Ok(h) => {
                tracing::info!(event_id = %h.event_id, applied = ?h.applied, unknown_topic = h.unknown_topic, conflicts = h.conflicts, "event handled");
                Ok(serde_json::to_value(&h).unwrap_or(Value::Null))
            }
            Err(HandleError::Rejected(r)) => Ok(rejected_answer(&r)),
            Err(e) => {
                let event_id = va_events::event_id_of(payload);
                tracing::error!(event_id, error = %e, error_type = e.error_type(), "event not counted; failing the invocation for a retry");
                Err(e.into())
            }
        }
    }

    /// Logs a rejection and puts the event on the queue with its reason.
    async fn dead_letter(&self, event: &Value, r: &Rejection) -> Result<(), DeadLetterError> {
        tracing::error!(event_id = %r.event_id, field = %r.field, problem = %r.problem, "rejected malformed event; not retried");
        match &self.dead_letters {
            Some(q) => q.send_rejected(event, r).await.inspect_err(|e| {
                tracing::error!(event_id = %r.event_id, error = %e, "could not dead-letter a rejected event; failing for a retry");
            }),
            None => Ok(()),
        }
    }

    /// An SQS batch; the answer names the messages to deliver again
    /// (`ReportBatchItemFailures`). Rejected events are dead-lettered with
    /// their reason and acknowledged.
    async fn on_batch(&self, payload: &Value, remaining: Duration) -> Value {
        let started = Instant::now();
        let records = payload
            .get("Records")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let (ids, events, mut failures) = self.read_records(records).await;
        let results = self
            .handler
            .handle_batch(&events, deadline(started, remaining))
            .await;
        let mut tally = BatchTally::default();
        for ((id, event), r) in ids.into_iter().zip(&events).zip(results) {
            match r {
                Ok(h) => tally.count(h.applied, h.conflicts),
                Err(HandleError::Rejected(r)) => {
                    if self.dead_letter(event, &r).await.is_ok() {
                        tally.rejected += 1.0;
                    } else {
                        failures.push(id);
                    }
                }
                Err(e) => {
                    tracing::error!(message_id = %id, error = %e, error_type = e.error_type(), "event not counted; reporting it as a batch item failure");
                    failures.push(id);
                }
            }
        }
        tally.emit(failures.len(), started);
        json!({
            "batchItemFailures": failures
                .into_iter()
                .map(|id| json!({"itemIdentifier": id}))
                .collect::<Vec<_>>()
        })
    }

    /// The batch's events by message id, and the ids of messages whose
    /// body is not JSON and could not be dead-lettered. A body that is not
    /// JSON is deterministic: it goes to the dead-letter queue now, not
    /// after five receives.
    async fn read_records(&self, records: &[Value]) -> (Vec<String>, Vec<Value>, Vec<String>) {
        let mut ids = Vec::new();
        let mut events = Vec::new();
        let mut failures = Vec::new();
        for r in records {
            let id = r
                .get("messageId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            match r
                .get("body")
                .and_then(Value::as_str)
                .map(serde_json::from_str::<Value>)
            {
                Some(Ok(event)) => {
                    ids.push(id);
                    events.push(event);
                }
                _ => {
                    let body = r.get("body").and_then(Value::as_str).unwrap_or_default();
                    let sent = match &self.dead_letters {
                        Some(q) => q
                            .send_unreadable(body, "the SQS message body is not a JSON event")
                            .await
                            .is_ok(),
                        None => true,
                    };
                    tracing::error!(message_id = %id, dead_lettered = sent, "SQS message body is not a JSON event; rejected");
                    if !sent {
                        failures.push(id);
                    }
                }
            }
        }
        (ids, events, failures)
    }
}

/// What a batch counted, for its metrics.
#[derive(Debug, Default)]
struct BatchTally {
    processed: f64,
    duplicate: f64,
    dropped: f64,
    rejected: f64,
    conflicts: f64,
}

impl BatchTally {
    fn count(&mut self, applied: Applied, conflicts: u32) {
        self.conflicts += f64::from(conflicts);
        match applied {
            Applied::Processed => self.processed += 1.0,
            Applied::Duplicate => self.duplicate += 1.0,
            Applied::Dropped => self.dropped += 1.0,
        }
    }

    /// The batch's metrics (EMF), with its item failures and latency.
    fn emit(&self, failures: usize, started: Instant) {
        metrics(&[
            ("EventsProcessed", self.processed),
            ("DuplicateEvents", self.duplicate),
            ("OffboardedOrgEvents", self.dropped),
            ("RejectedEvents", self.rejected),
            ("WriteConflictsRetried", self.conflicts),
            ("BatchItemFailures", failures as f64),
            (
                "ProcessingLatencyMilliseconds",
                started.elapsed().as_secs_f64() * 1000.0,
            ),
        ]);
    }
}

fn rejected_answer(r: &Rejection) -> Value {
    json!({"event_id": r.event_id, "rejected": format!("`{}` {}", r.field, r.problem)})
}

fn metrics(values: &[(&str, f64)]) {
    emf::emit("conversation-events", SystemClock.now_ms(), &[], values);
}
