//! The EventBridge envelope: its id, the org of its partner source, and
//! parsing it into an [`Event`].

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bodies::Body;
use crate::bounds::{MAX_EVENT_ID_BYTES, Rejection, check_body, is_uuid, reject, typed};
use crate::event::Event;
use crate::topics::{CONVERSATION_PREFIX, Topic};

/// The envelope's `detail` as Genesys Cloud fills it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenesysDetail {
    topic_name: String,
    #[serde(default)]
    event_body: Value,
}

/// Parses raw bytes (a local run's input line, a fuzzer's input).
pub fn parse_slice(bytes: &[u8]) -> Result<Event, Rejection> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        reject(
            "<none>",
            ".",
            format!(
                "is not JSON ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })?;
    parse(&v)
}

/// An envelope's EventBridge id for logs and rejections, whatever the
/// envelope: `<none>` when it is missing, not a string, or longer than
/// [`MAX_EVENT_ID_BYTES`] (so a hostile id never fills a log line).
pub fn event_id_of(raw: &Value) -> &str {
    raw.get("id")
        .and_then(Value::as_str)
        .filter(|s| s.len() <= MAX_EVENT_ID_BYTES)
        .unwrap_or("<none>")
}

/// What every Genesys Cloud partner event source is named: the org id and a
/// suffix the admin chose follow it.
pub const PARTNER_SOURCE_PREFIX: &str = "aws.partner/genesys.com/cloud/";

/// The org an event comes from: the `<orgId>` of its `source`
/// (`aws.partner/genesys.com/cloud/<orgId>/<suffix>`), which EventBridge
/// sets from the partner event source the event arrived on (a partner
/// cannot put another's name there). The org must be a UUID and the suffix
/// non-empty; anything else is a [`Rejection`] of field `source`. The id
/// comes back lowercase, the one form keys, the registry and groups use.
pub fn org_of(raw: &Value) -> Result<String, Rejection> {
    let id = event_id_of(raw);
    let source = match raw.get("source") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(reject(id, "source", "must be a string")),
        None => return Err(reject(id, "source", "is missing")),
    };
    source
        .strip_prefix(PARTNER_SOURCE_PREFIX)
        .and_then(|rest| rest.split_once('/'))
        .filter(|(org, suffix)| is_uuid(org) && !suffix.is_empty() && suffix.len() <= 256)
        .map(|(org, _)| org.to_ascii_lowercase())
        .ok_or_else(|| {
            reject(
                id,
                "source",
                format!("must be a Genesys Cloud partner event source ({PARTNER_SOURCE_PREFIX}<orgId>/<suffix>)"),
            )
        })
}

/// Parses one EventBridge event as Lambda receives it.
pub fn parse(v: &Value) -> Result<Event, Rejection> {
    let id = envelope_id(v)?;
    if !v.is_object() {
        return Err(reject(&id, ".", "must be a JSON object"));
    }
    let envelope: EventBridgeEvent<Value> = typed(&id, "", v)?;
    let Some(topic) = conversation_topic(&id, &envelope)? else {
        return Ok(Event::Unknown {
            id,
            detail_type: envelope.detail_type,
            time_ms: envelope.time.map(|t| t.timestamp_millis()).unwrap_or(0),
        });
    };
    let body = typed_body(&id, topic, &envelope.detail)?;
    check_body(&id, &body)?;
    let conversation_id = body.conversation_id().to_string();
    Ok(Event::Conversation {
        id,
        topic,
        conversation_id,
        body,
    })
}

/// The envelope's `id`, required before anything else: every rejection
/// after this one names the event by it.
fn envelope_id(v: &Value) -> Result<String, Rejection> {
    match v.get("id") {
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= MAX_EVENT_ID_BYTES
                && s.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(s.clone())
        }
        Some(_) => Err(reject(
            "<none>",
            "id",
            format!("must be 1 to {MAX_EVENT_ID_BYTES} printable ASCII characters"),
        )),
        None => Err(reject("<none>", "id", "is missing")),
    }
}

/// The typed topic of `detail.topicName`, or `None` for any other topic
/// (those are acknowledged, not rejected). A conversation `detail-type`
/// without a topic name is rejected.
fn conversation_topic(
    id: &str,
    envelope: &EventBridgeEvent<Value>,
) -> Result<Option<Topic>, Rejection> {
    let topic_name = match envelope.detail.get("topicName") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(reject(id, "detail.topicName", "must be a string")),
        None if envelope.detail_type.starts_with(CONVERSATION_PREFIX) => {
            return Err(reject(id, "detail.topicName", "is missing"));
        }
        None => "",
    };
    Ok(topic_name
        .strip_prefix(CONVERSATION_PREFIX)
        .and_then(|rest| rest.split_once('.'))
        .and_then(|(_, suffix)| Topic::from_suffix(suffix)))
}

/// The `detail.eventBody` of a typed topic, deserialized as that topic's body.
fn typed_body(id: &str, topic: Topic, detail: &Value) -> Result<Body, Rejection> {
    let detail: GenesysDetail = typed(id, "detail.", detail)?;
    if !detail.event_body.is_object() {
        return Err(reject(id, "detail.eventBody", "must be a JSON object"));
    }
    let prefix = "detail.eventBody.";
    Ok(match topic {
        Topic::FlowStart | Topic::FlowEnd => Body::Flow(typed(id, prefix, &detail.event_body)?),
        Topic::FlowOutcome => Body::FlowOutcome(typed(id, prefix, &detail.event_body)?),
        _ => Body::Participant(typed(id, prefix, &detail.event_body)?),
    })
}
