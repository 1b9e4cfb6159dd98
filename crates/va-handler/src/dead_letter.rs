//! The dead-letter queue: what lands there, in every shape the template can
//! produce, and how a message gives back its event.
//!
//! Shapes (all JSON bodies):
//! - Lambda's on-failure destination for an async invocation: an invocation
//!   record, the event under `requestPayload`
//!   (<https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html>).
//! - EventBridge's target dead-letter queue: the event itself, with the
//!   attributes `RULE_ARN`, `TARGET_ARN`, `ERROR_CODE`, `ERROR_MESSAGE`
//!   (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html>).
//! - The event queue's redrive (the batch path): the message as EventBridge
//!   wrote it, the event itself.
//! - This module's rejections: the event itself, with `ERROR_CODE` =
//!   `Rejected` and the reason in `ERROR_MESSAGE`, as EventBridge names them.

use std::collections::HashMap;

use aws_sdk_sqs::types::MessageAttributeValue;
use serde_json::Value;
use va_events::Rejection;

/// Attribute naming why a message is here (EventBridge's name).
pub const ERROR_CODE: &str = "ERROR_CODE";
/// Attribute with the reason, field names only (EventBridge's name).
pub const ERROR_MESSAGE: &str = "ERROR_MESSAGE";
/// `ERROR_CODE` of an event the handler rejected as malformed.
pub const REJECTED: &str = "Rejected";

/// Sending to or reading the queue failed.
#[derive(Debug, thiserror::Error)]
#[error("dead-letter queue: {0}")]
pub struct DeadLetterError(String);

fn sqs_error<E, R>(what: &str, e: aws_sdk_sqs::error::SdkError<E, R>) -> DeadLetterError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    DeadLetterError(format!(
        "{what}: {}",
        aws_sdk_sqs::error::DisplayErrorContext(e)
    ))
}

/// Where a dead letter came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Origin {
    /// Lambda's on-failure destination: every async attempt failed.
    LambdaOnFailure,
    /// EventBridge could not invoke the target.
    EventBridge,
    /// Rejected by the handler as malformed.
    Rejected,
    /// The event queue gave up on it (batch path), or unknown.
    Queue,
}

/// One message's event, and what is known of its failure.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The EventBridge event to replay.
    pub event: Value,
    /// Which path put it there.
    pub origin: Origin,
    /// The recorded reason, if any (never an event value).
    pub reason: Option<String>,
}

/// Reads a message body and its string attributes. `None`: the body is not
/// a JSON object, so there is no event to replay.
pub fn read_message(body: &str, attributes: &HashMap<String, String>) -> Option<DeadLetter> {
    let v: Value = serde_json::from_str(body).ok()?;
    if !v.is_object() {
        return None;
    }
    if let (Some(payload), Some(context)) = (v.get("requestPayload"), v.get("requestContext")) {
        let reason = context.get("condition").and_then(Value::as_str).map(|c| {
            let kind = v
                .pointer("/responseContext/functionError")
                .and_then(Value::as_str)
                .unwrap_or("Unhandled");
            format!("{c} ({kind})")
        });
        return Some(DeadLetter {
            event: payload.clone(),
            origin: Origin::LambdaOnFailure,
            reason,
        });
    }
    let code = attributes.get(ERROR_CODE);
    let origin = match code.map(String::as_str) {
        Some(REJECTED) => Origin::Rejected,
        Some(_) if attributes.contains_key("RULE_ARN") => Origin::EventBridge,
        _ => Origin::Queue,
    };
    let reason = match (code, attributes.get(ERROR_MESSAGE)) {
        (Some(c), Some(m)) => Some(format!("{c}: {m}")),
        (Some(c), None) => Some(c.clone()),
        (None, _) => None,
    };
    Some(DeadLetter {
        event: v,
        origin,
        reason,
    })
}

/// The queue, as the handler and `redrive` use it.
#[derive(Debug, Clone)]
pub struct DeadLetterQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

/// A received message.
#[derive(Debug, Clone)]
pub struct Received {
    /// For deleting it.
    pub receipt_handle: String,
    /// The message id.
    pub message_id: String,
    /// Its event, or `None` if the body holds none.
    pub letter: Option<DeadLetter>,
}

impl DeadLetterQueue {
    /// The queue at `url`.
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Puts a rejected event on the queue with its reason, at once: a
    /// deterministic rejection gains nothing from Lambda's retries.
    pub async fn send_rejected(
        &self,
        event: &Value,
        rejection: &Rejection,
    ) -> Result<(), DeadLetterError> {
        let reason = format!("`{}` {}", rejection.field, rejection.problem);
        self.send_with_reason(&event.to_string(), &reason).await
    }

    /// Puts a message body that holds no event on the queue, with why.
    pub async fn send_unreadable(&self, body: &str, reason: &str) -> Result<(), DeadLetterError> {
        let body = if body.is_empty() { "<empty>" } else { body };
        self.send_with_reason(body, reason).await
    }

    /// `body` with `ERROR_CODE` = `Rejected` and `ERROR_MESSAGE` = `reason`.
    async fn send_with_reason(&self, body: &str, reason: &str) -> Result<(), DeadLetterError> {
        let attr = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| DeadLetterError(format!("message attribute: {e}")))
        };
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_attributes(ERROR_CODE, attr(REJECTED)?)
            .message_attributes(ERROR_MESSAGE, attr(reason)?)
            .send()
            .await
            .map_err(|e| sqs_error("send a rejected message", e))?;
        Ok(())
    }

    /// Sends a body as is: what another sender (Lambda, EventBridge) would
    /// write; for tests and tools.
    pub async fn send_raw(&self, body: &str) -> Result<(), DeadLetterError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| sqs_error("send", e))?;
        Ok(())
    }

    /// Up to 10 messages, waiting up to `wait_s` seconds for the first (long
    /// polling asks every SQS server, so an empty answer means empty), each
    /// hidden from other readers for `visibility_s` seconds.
    pub async fn receive(
        &self,
        wait_s: i32,
        visibility_s: i32,
    ) -> Result<Vec<Received>, DeadLetterError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_s)
            .visibility_timeout(visibility_s)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| sqs_error("receive", e))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| {
                let attributes: HashMap<String, String> = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .filter_map(|(k, v)| {
                                v.string_value().map(|s| (k.clone(), s.to_string()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Received {
                    receipt_handle: m.receipt_handle().unwrap_or_default().to_string(),
                    message_id: m.message_id().unwrap_or_default().to_string(),
                    letter: read_message(m.body().unwrap_or_default(), &attributes),
                }
            })
            .collect())
    }

    /// Deletes a received message.
    pub async fn delete(&self, receipt_handle: &str) -> Result<(), DeadLetterError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|e| sqs_error("delete", e))?;
        Ok(())
    }

    /// SQS's estimate of the messages left, visible and in flight.
    pub async fn approximate_depth(&self) -> Result<u64, DeadLetterError> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| sqs_error("queue attributes", e))?;
        let attrs = out.attributes();
        let n = |k: A| {
            attrs
                .and_then(|a| a.get(&k))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(n(A::ApproximateNumberOfMessages)
            .saturating_add(n(A::ApproximateNumberOfMessagesNotVisible)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_shape_gives_back_its_event() {
        let event = json!({"id": "e-1", "detail-type": "x", "detail": {}});
        let record = json!({
            "version": "1.0",
            "timestamp": "2026-11-27T10:00:00.000Z",
            "requestContext": {"requestId": "r", "functionArn": "arn:aws:lambda:us-east-1:1:function:f:$LATEST",
                               "condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorType": "Store", "errorMessage": "..."}
        });
        let none = HashMap::new();
        let l = read_message(&record.to_string(), &none).expect("record");
        assert_eq!(l.origin, Origin::LambdaOnFailure);
        assert_eq!(l.event, event);
        assert_eq!(l.reason.as_deref(), Some("RetriesExhausted (Unhandled)"));

        let eb: HashMap<String, String> = [
            ("RULE_ARN", "arn:aws:events:us-east-1:1:rule/b/r"),
            ("TARGET_ARN", "arn:aws:lambda:us-east-1:1:function:f"),
            ("ERROR_CODE", "SDK_CLIENT_ERROR"),
            ("ERROR_MESSAGE", "Unable to invoke Lambda function"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let l = read_message(&event.to_string(), &eb).expect("eventbridge");
        assert_eq!((l.origin, &l.event), (Origin::EventBridge, &event));

        let rejected: HashMap<String, String> =
            [(ERROR_CODE, REJECTED), (ERROR_MESSAGE, "`id` is missing")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let l = read_message(&event.to_string(), &rejected).expect("rejected");
        assert_eq!(l.origin, Origin::Rejected);
        assert_eq!(l.reason.as_deref(), Some("Rejected: `id` is missing"));

        let l = read_message(&event.to_string(), &none).expect("queue");
        assert_eq!(l.origin, Origin::Queue);
        assert!(read_message("not json", &none).is_none());
        assert!(read_message("[1]", &none).is_none());
    }
}
