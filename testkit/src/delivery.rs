//! The Batch mode's AWS-side deliveries, made by the principals AWS makes
//! them with: EventBridge sends a rule's events to the event queue as the
//! service `events.amazonaws.com` for the rule (`aws:SourceArn`), and the
//! event source mapping polls the queue with the function's execution role
//! (Lambda Developer Guide, "Using Lambda with Amazon SQS": the execution
//! role needs `sqs:ReceiveMessage`, `sqs:DeleteMessage` and
//! `sqs:GetQueueAttributes`; SQS Developer Guide, "Configuring a queue to
//! trigger a Lambda function": with an encrypted queue, also `kms:Decrypt`).

use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::{Value, json};

use crate::aws::TestResources;
use crate::iam::Role;

/// The stack's Batch rule (SingleOrg), as EventBridge's source ARN.
fn rule_arn(res: &TestResources) -> String {
    res.stack
        .as_ref()
        .and_then(|s| s.names.attributes.get("BatchRule.Arn").cloned())
        .unwrap_or_default()
}

/// EventBridge delivers `event` to the event queue for the stack's rule.
pub async fn eventbridge_sends(res: &TestResources, event: &Value) -> Result<(), String> {
    let events = res.as_service("events.amazonaws.com", &rule_arn(res));
    events
        .sqs
        .send_message()
        .queue_url(res.event_queue_url())
        .message_body(event.to_string())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
}

/// What one poll of the event source mapping did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Poll {
    pub received: usize,
    /// Messages the function reported failed (left for the next receive).
    pub failed: usize,
    pub deleted: usize,
}

/// One poll of the event source mapping: receive up to 10 messages with the
/// function's role, invoke `function` with them as an SQS event, delete
/// the ones it did not report failed (`ReportBatchItemFailures`).
pub async fn mapping_polls(
    res: &TestResources,
    function: &va_handler::ConversationEvents,
) -> Result<Poll, String> {
    let role = res.as_role(Role::ConversationEvents);
    let queue = res.event_queue_url();
    // The mapping reads the queue's attributes (Lambda Developer Guide,
    // "Using Lambda with Amazon SQS": the execution role needs
    // sqs:GetQueueAttributes).
    role.sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
    let got = role
        .sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
    let messages = got.messages();
    let arn = crate::iam::request::queue_arn(&queue);
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": crate::iam::request::REGION,
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": {"ApproximateReceiveCount": m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .cloned()
                    .unwrap_or_else(|| "1".into())},
            })
        })
        .collect();
    let mut poll = Poll {
        received: records.len(),
        ..Poll::default()
    };
    if records.is_empty() {
        return Ok(poll);
    }
    let answer = function
        .invoke(
            &json!({"Records": records}),
            std::time::Duration::from_secs(30),
        )
        .await
        .map_err(|e| e.to_string())?;
    let failed: Vec<String> = answer
        .get("batchItemFailures")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("itemIdentifier").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    poll.failed = failed.len();
    for m in messages {
        if failed.iter().any(|f| Some(f.as_str()) == m.message_id()) {
            continue;
        }
        role.sqs
            .delete_message()
            .queue_url(&queue)
            .receipt_handle(m.receipt_handle().unwrap_or_default())
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        poll.deleted += 1;
    }
    Ok(poll)
}
