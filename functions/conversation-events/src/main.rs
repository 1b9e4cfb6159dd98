//! conversation-events: invoked by the EventBridge rule on the Genesys Cloud
//! partner event bus, one event per invocation; or, with the template's
//! `DeliveryMode=Batch`, by an SQS queue the rule fills, up to 100 events per
//! invocation, answering with the messages that failed
//! (`ReportBatchItemFailures`). Counts each event exactly once into
//! per-minute Virtual Agent KPIs, and leaves each ended bot session for the
//! enrichment sweeper. It never calls Genesys Cloud. A malformed event is
//! acknowledged and put on the dead-letter queue with its reason at once; a
//! store failure fails the invocation (error type `Store`), so Lambda's
//! async retries try it again and finally send it to the on-failure
//! destination. Nothing is dropped silently.
//!
//! Outside Lambda (no `AWS_LAMBDA_RUNTIME_API`) it reads events from standard
//! input, one JSON document per line, and prints what it did with each.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use lambda_support::{Clock, SystemClock, telemetry};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use va_analytics::AnalyticsStore;
use va_handler::{ConversationEvents, DeadLetterQueue, EventHandler, HandlerConfig};

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
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    if in_lambda && cfg.dead_letter_queue_url.is_none() {
        // Without it a rejected event would be acknowledged and lost.
        tracing::error!(
            "conversation-events cannot start: DEAD_LETTER_QUEUE_URL is not set (where rejected events go)"
        );
        return Err("DEAD_LETTER_QUEUE_URL is not set".into());
    }
    // Clients are built once per container, outside the handler.
    let function = Arc::new(build(&cfg).await);

    if !in_lambda {
        return run_from_stdin(&function).await;
    }
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = function.clone();
        async move {
            let remaining = Duration::from_millis(
                event
                    .context
                    .deadline
                    .saturating_sub(SystemClock.now_ms().max(0) as u64),
            );
            function
                .invoke(&event.payload, remaining)
                .await
                .map_err(|e| Diagnostic {
                    error_type: e.error_type().to_string(),
                    error_message: e.to_string(),
                })
        }
    }))
    .await
}

/// The function with its clients, built once per container.
async fn build(cfg: &HandlerConfig) -> ConversationEvents {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let store =
        AnalyticsStore::new(ddb.clone(), cfg.analytics_table.clone()).with_retention(cfg.retention);
    let tenancy = cfg.tenancy(&ddb, clock.clone());
    let dead_letters = cfg
        .dead_letter_queue_url
        .as_ref()
        .map(|url| DeadLetterQueue::new(aws_sdk_sqs::Client::new(&aws), url));
    ConversationEvents::new(
        EventHandler::new(store, cfg.kpi.clone(), clock).with_tenancy(tenancy),
        dead_letters,
    )
}

/// Outside Lambda: one event a line on stdin, each answer on stdout; fails
/// when any event was not counted.
async fn run_from_stdin(function: &ConversationEvents) -> Result<(), Error> {
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
        match function.invoke(&event, Duration::from_secs(30)).await {
            Ok(answer) => {
                failures += answer["batchItemFailures"].as_array().map_or(0, Vec::len);
                println!("{answer}");
            }
            Err(_) => failures += 1,
        }
    }
    if failures == 0 {
        Ok(())
    } else {
        Err(format!("{failures} events not counted").into())
    }
}
