//! conversation-events: invoked by the EventBridge rule on the Genesys Cloud
//! partner event bus, one event per invocation; or, with the template's
//! `DeliveryMode=Batch`, by an SQS queue the rule fills, up to 100 events per
//! invocation, answering with the messages that failed
//! (`ReportBatchItemFailures`). Counts each event exactly once
//! into per-minute Virtual Agent KPIs, and leaves each ended bot session for
//! the enrichment sweeper. It never calls Genesys Cloud. A malformed event or a
//! store failure fails the invocation, so Lambda's async retries try it again
//! and finally send it to the on-failure destination. Nothing is dropped
//! silently.
//!
//! Outside Lambda (no `AWS_LAMBDA_RUNTIME_API`) it reads events from standard
//! input, one JSON document per line, and prints what it did with each.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use lambda_support::{Clock, SystemClock, emf, telemetry};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use va_analytics::{AnalyticsStore, Applied};
use va_handler::{EventHandler, HandleError, Handled, HandlerConfig};

/// Leaves this much of the invocation for writing the result.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

async fn handle(
    handler: &EventHandler,
    event: &Value,
    remaining: Duration,
) -> Result<Handled, HandleError> {
    let started = tokio::time::Instant::now();
    let result = handler
        .handle(event, started + remaining.saturating_sub(DEADLINE_MARGIN))
        .await;
    let conflicts = result.as_ref().map_or(0, |h| h.conflicts);
    let (processed, duplicate, unknown, rejected) = match &result {
        Ok(h) => match h.applied {
            Applied::Processed => (1.0, 0.0, f64::from(u8::from(h.unknown_topic)), 0.0),
            Applied::Duplicate => (0.0, 1.0, 0.0, 0.0),
        },
        Err(HandleError::Rejected(_)) => (0.0, 0.0, 0.0, 1.0),
        Err(_) => (0.0, 0.0, 0.0, 0.0),
    };
    emf::emit(
        "conversation-events",
        SystemClock.now_ms(),
        &[],
        &[
            ("EventsProcessed", processed),
            ("DuplicateEvents", duplicate),
            ("UnknownTopics", unknown),
            ("RejectedEvents", rejected),
            ("WriteConflictsRetried", f64::from(conflicts)),
            (
                "ProcessingLatencyMilliseconds",
                started.elapsed().as_secs_f64() * 1000.0,
            ),
        ],
    );
    match &result {
        Ok(h) => {
            tracing::info!(event_id = %h.event_id, applied = ?h.applied, unknown_topic = h.unknown_topic, conflicts = h.conflicts, "event handled")
        }
        Err(HandleError::Rejected(r)) => {
            tracing::error!(event_id = %r.event_id, field = %r.field, problem = %r.problem, "rejected malformed event")
        }
        Err(e) => {
            let event_id = event.get("id").and_then(|v| v.as_str()).unwrap_or("<none>");
            tracing::error!(event_id, error = %e, "event not counted; failing the invocation for a retry")
        }
    }
    result
}

/// An SQS event: `{"Records": [{"eventSource": "aws:sqs", ...}]}`.
fn is_sqs_batch(payload: &Value) -> bool {
    payload
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs")
}

/// Handles an SQS batch; the answer names the messages to deliver again, in
/// the shape Lambda's `ReportBatchItemFailures` reads
/// (`{"batchItemFailures": [{"itemIdentifier": "<messageId>"}]}`).
async fn handle_sqs(handler: &EventHandler, payload: &Value, remaining: Duration) -> Value {
    let started = tokio::time::Instant::now();
    let records = payload
        .get("Records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut ids = Vec::new();
    let mut events = Vec::new();
    let mut failures = Vec::new();
    for r in &records {
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
                tracing::error!(message_id = %id, "SQS message body is not a JSON event; leaving it for the dead-letter queue");
                failures.push(id);
            }
        }
    }
    let results = handler
        .handle_batch(&events, started + remaining.saturating_sub(DEADLINE_MARGIN))
        .await;
    let (mut processed, mut duplicate, mut rejected, mut conflicts) = (0.0, 0.0, 0.0, 0.0);
    for (id, r) in ids.into_iter().zip(results) {
        match r {
            Ok(h) => {
                conflicts += f64::from(h.conflicts);
                match h.applied {
                    Applied::Processed => processed += 1.0,
                    Applied::Duplicate => duplicate += 1.0,
                }
            }
            Err(e) => {
                if matches!(e, HandleError::Rejected(_)) {
                    rejected += 1.0;
                }
                tracing::error!(message_id = %id, error = %e, "event not counted; reporting it as a batch item failure");
                failures.push(id);
            }
        }
    }
    emf::emit(
        "conversation-events",
        SystemClock.now_ms(),
        &[],
        &[
            ("EventsProcessed", processed),
            ("DuplicateEvents", duplicate),
            ("RejectedEvents", rejected),
            ("WriteConflictsRetried", conflicts),
            ("BatchItemFailures", failures.len() as f64),
            (
                "ProcessingLatencyMilliseconds",
                started.elapsed().as_secs_f64() * 1000.0,
            ),
        ],
    );
    serde_json::json!({
        "batchItemFailures": failures
            .into_iter()
            .map(|id| serde_json::json!({"itemIdentifier": id}))
            .collect::<Vec<_>>()
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let cfg = match HandlerConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "conversation-events cannot start");
            return Err(e.into());
        }
    };
    // Clients are built once per container, outside the handler.
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = AnalyticsStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        cfg.analytics_table.clone(),
    );
    let handler = Arc::new(EventHandler::new(store, cfg.kpi.clone(), clock));

    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let mut failures = 0;
        while let Some(line) = lines.next_line().await? {
            if line.trim().is_empty() {
                continue;
            }
            let event: Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(e) => {
                    failures += 1;
                    tracing::error!(error = ?e.classify(), line = e.line(), column = e.column(), "input line is not JSON");
                    continue;
                }
            };
            if is_sqs_batch(&event) {
                let answer = handle_sqs(&handler, &event, Duration::from_secs(30)).await;
                failures += answer["batchItemFailures"].as_array().map_or(0, Vec::len);
                println!("{answer}");
                continue;
            }
            match handle(&handler, &event, Duration::from_secs(30)).await {
                Ok(h) => println!("{}", serde_json::to_string(&h)?),
                Err(_) => failures += 1,
            }
        }
        return if failures == 0 {
            Ok(())
        } else {
            Err(format!("{failures} events not counted").into())
        };
    }
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move {
            let remaining = Duration::from_millis(
                event
                    .context
                    .deadline
                    .saturating_sub(SystemClock.now_ms().max(0) as u64),
            );
            if is_sqs_batch(&event.payload) {
                return Ok(handle_sqs(&handler, &event.payload, remaining).await);
            }
            handle(&handler, &event.payload, remaining)
                .await
                .map(|h| serde_json::to_value(h).unwrap_or(Value::Null))
                .map_err(Error::from)
        }
    }))
    .await
}
