//! Replays the dead-letter queue through the handler core: each event is
//! counted (or found already counted) and its message deleted; what cannot
//! be counted stays, and the report says why.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use va_analytics::Applied;

use crate::dead_letter::{DeadLetterError, DeadLetterQueue, Origin};
use crate::{EventHandler, HandleError};

/// How a redrive reads the queue.
#[derive(Debug, Clone)]
pub struct RedriveOptions {
    /// Long-poll wait per receive, seconds (0 to 20).
    pub wait_s: i32,
    /// How long a message left on the queue stays hidden from this run.
    pub visibility_s: i32,
    /// Time given to one event.
    pub per_event: Duration,
    /// Stop after this many messages.
    pub max_messages: u64,
    /// Delete events rejected again (after reading their reasons in the
    /// report and the log): a malformed event will not get better.
    pub drop_rejected: bool,
}

impl Default for RedriveOptions {
    fn default() -> Self {
        Self {
            wait_s: 2,
            visibility_s: 300,
            per_event: Duration::from_secs(30),
            max_messages: u64::MAX,
            drop_rejected: false,
        }
    }
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RedriveReport {
    /// Messages read.
    pub received: u64,
    /// Events counted now (and deleted).
    pub counted: u64,
    /// Events found already counted (and deleted).
    pub already_counted: u64,
    /// Events of an offboarded org (deleted, not counted: its data is gone).
    pub offboarded: u64,
    /// Rejected again as malformed (left, unless dropped).
    pub rejected: u64,
    /// Of those, deleted (`drop_rejected`).
    pub dropped: u64,
    /// Left: the store failed again.
    pub failed: u64,
    /// Left: the body holds no event.
    pub unreadable: u64,
    /// Messages read, by where they came from.
    pub by_origin: std::collections::BTreeMap<String, u64>,
    /// Left on the queue after the run (SQS's estimate).
    pub left: u64,
}

/// Replays every message it can read until the queue answers empty (or
/// only with messages this run already left).
pub async fn redrive(
    handler: &EventHandler,
    queue: &DeadLetterQueue,
    opts: &RedriveOptions,
) -> Result<RedriveReport, DeadLetterError> {
    let mut report = RedriveReport::default();
    let mut seen: HashSet<String> = HashSet::new();
    while report.received < opts.max_messages {
        let batch = queue.receive(opts.wait_s, opts.visibility_s).await?;
        let fresh: Vec<_> = batch
            .into_iter()
            .filter(|m| seen.insert(m.message_id.clone()))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for m in fresh {
            report.received += 1;
            let Some(letter) = m.letter else {
                report.unreadable += 1;
                tracing::warn!(message_id = %m.message_id, "dead letter holds no event; left on the queue");
                continue;
            };
            *report
                .by_origin
                .entry(format!("{:?}", letter.origin))
                .or_default() += 1;
            match handler
                .handle(&letter.event, Instant::now() + opts.per_event)
                .await
            {
                Ok(h) => {
                    queue.delete(&m.receipt_handle).await?;
                    match h.applied {
                        Applied::Processed => report.counted += 1,
                        Applied::Duplicate => report.already_counted += 1,
                        Applied::Dropped => report.offboarded += 1,
                    }
                }
                Err(HandleError::Rejected(r)) => {
                    report.rejected += 1;
                    if opts.drop_rejected {
                        queue.delete(&m.receipt_handle).await?;
                        report.dropped += 1;
                    }
                    tracing::warn!(message_id = %m.message_id, field = %r.field, problem = %r.problem, was_rejected = letter.origin == Origin::Rejected, dropped = opts.drop_rejected, "still rejected");
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(message_id = %m.message_id, error = %e, "still not counted; left on the queue");
                }
            }
        }
    }
    report.left = queue.approximate_depth().await?;
    Ok(report)
}
