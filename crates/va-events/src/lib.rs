//! The Genesys Cloud EventBridge envelope and the conversation topics this
//! product reads. Parsing never panics: anything it cannot use is a
//! [`Rejection`] naming the event id and the field, never the field's value
//! (bodies carry ANIs and other personal data). Pure: no I/O, no AWS SDK.
//!
//! Body fields are the SDK models' (`FlowEndDetailEventTopicFlowEndEvent` and
//! siblings) in snake case; every one is optional there, so only what the KPIs
//! cannot do without is required here.
#![warn(missing_docs)]

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

const CONVERSATION_PREFIX: &str = "v2.detail.events.conversation.";

/// Event times outside [2000-01-01, 2100-01-01) are rejected: nothing real
/// lies there, and every time sum and 13-digit sort key stays in range.
pub const MIN_EVENT_TIME_MS: i64 = 946_684_800_000;
/// See [`MIN_EVENT_TIME_MS`].
pub const MAX_EVENT_TIME_MS: i64 = 4_102_444_800_000;
/// The longest `connectedDurationMs` accepted: 31 days.
pub const MAX_DURATION_MS: i64 = 31 * 86_400_000;
/// The longest name-like value accepted (flow type, exit reason, outcome
/// value, ...): names become attribute names and dashboard labels.
pub const MAX_NAME_BYTES: usize = 128;
/// The longest EventBridge `id` accepted (EventBridge's own are UUIDs).
pub const MAX_EVENT_ID_BYTES: usize = 128;
/// How far past the handler's clock an `eventTime` may lie: Genesys stamps
/// events when they happen, so only clock skew puts one in the future.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60_000;

/// Conversation topics with a typed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[allow(missing_docs)]
pub enum Topic {
    CustomerStart,
    CustomerEnd,
    FlowStart,
    FlowEnd,
    FlowOutcome,
    AcdStart,
    AcdEnd,
    UserStart,
    UserEnd,
}

impl Topic {
    /// Every typed topic.
    pub const ALL: [Topic; 9] = [
        Topic::CustomerStart,
        Topic::CustomerEnd,
        Topic::FlowStart,
        Topic::FlowEnd,
        Topic::FlowOutcome,
        Topic::AcdStart,
        Topic::AcdEnd,
        Topic::UserStart,
        Topic::UserEnd,
    ];

    /// The part after `v2.detail.events.conversation.{id}.`.
    pub fn suffix(self) -> &'static str {
        match self {
            Topic::CustomerStart => "customer.start",
            Topic::CustomerEnd => "customer.end",
            Topic::FlowStart => "flow.start",
            Topic::FlowEnd => "flow.end",
            Topic::FlowOutcome => "flow.outcome",
            Topic::AcdStart => "acd.start",
            Topic::AcdEnd => "acd.end",
            Topic::UserStart => "user.start",
            Topic::UserEnd => "user.end",
        }
    }

    /// The EventBridge `detail-type` (topic pattern with `{id}` left in).
    pub fn detail_type(self) -> String {
        format!("{CONVERSATION_PREFIX}{{id}}.{}", self.suffix())
    }

    fn from_suffix(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.suffix() == s)
    }
}

/// Why an event cannot be used. Carries no field values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rejected event {event_id}: `{field}` {problem}")]
pub struct Rejection {
    /// The envelope's `id`, or `<none>`.
    pub event_id: String,
    /// A JSON path, e.g. `detail.eventBody.eventTime`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenesysDetail {
    topic_name: String,
    #[serde(default)]
    event_body: Value,
}

/// `flow.start` and `flow.end`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[allow(missing_docs)]
#[serde(rename_all = "camelCase")]
pub struct FlowBody {
    pub event_time: i64,
    pub conversation_id: String,
    #[serde(default)]
    pub participant_id: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub media_type: Option<String>,
    pub flow_type: String,
    pub flow_id: String,
    #[serde(default)]
    pub flow_version: Option<String>,
    #[serde(default)]
    pub division_id: Option<String>,
    #[serde(default)]
    pub disconnect_type: Option<String>,
    #[serde(default)]
    pub connected_duration_ms: Option<i64>,
    #[serde(default)]
    pub exit_reason: Option<String>,
    #[serde(default)]
    pub transfer_type: Option<String>,
}

/// `flow.outcome`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[allow(missing_docs)]
#[serde(rename_all = "camelCase")]
pub struct FlowOutcomeBody {
    pub event_time: i64,
    pub conversation_id: String,
    pub flow_type: String,
    pub flow_id: String,
    pub flow_outcome_id: String,
    pub flow_outcome_value: String,
    #[serde(default)]
    pub flow_outcome_start_time: Option<i64>,
    #[serde(default)]
    pub flow_outcome_end_time: Option<i64>,
}

/// `customer.*`, `acd.*`, `user.*`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[allow(missing_docs)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantBody {
    pub event_time: i64,
    pub conversation_id: String,
    #[serde(default)]
    pub participant_id: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub queue_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub disconnect_type: Option<String>,
    #[serde(default)]
    pub connected_duration_ms: Option<i64>,
}

/// A typed body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Body {
    Flow(FlowBody),
    FlowOutcome(FlowOutcomeBody),
    Participant(ParticipantBody),
}

impl Body {
    /// `eventTime`, epoch ms.
    pub fn event_time(&self) -> i64 {
        match self {
            Body::Flow(b) => b.event_time,
            Body::FlowOutcome(b) => b.event_time,
            Body::Participant(b) => b.event_time,
        }
    }
}

/// A parsed event. One lives per invocation, so the variants' size gap is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A conversation topic with a typed body.
    Conversation {
        /// The EventBridge id.
        id: String,
        /// Which topic.
        topic: Topic,
        /// The body's `conversationId`.
        conversation_id: String,
        /// The body.
        body: Body,
    },
    /// Any other topic: acknowledged and counted, never an error.
    Unknown {
        /// The EventBridge id.
        id: String,
        /// The envelope's `detail-type`.
        detail_type: String,
        /// The envelope's `time`, epoch ms.
        time_ms: i64,
    },
}

impl Event {
    /// What makes two deliveries one event whatever their EventBridge ids:
    /// EventBridge and Lambda retries keep the id, but a re-send from Genesys
    /// gets a new one. The topic, the conversation, the participant (or
    /// session), the event time, the flow, and the outcome id for outcomes.
    /// Events of other topics are known only by their id.
    pub fn content_key(&self) -> String {
        match self {
            Event::Unknown { id, .. } => format!("id#{id}"),
            Event::Conversation {
                topic,
                conversation_id,
                body,
                ..
            } => {
                let (who, what) = match body {
                    Body::Flow(b) => (
                        b.participant_id.as_deref().or(b.session_id.as_deref()),
                        b.flow_id.as_str(),
                    ),
                    Body::FlowOutcome(b) => (Some(b.flow_id.as_str()), b.flow_outcome_id.as_str()),
                    Body::Participant(b) => {
                        (b.participant_id.as_deref().or(b.session_id.as_deref()), "-")
                    }
                };
                format!(
                    "{}#{conversation_id}#{}#{}#{what}",
                    topic.suffix(),
                    who.unwrap_or("-"),
                    body.event_time()
                )
            }
        }
    }

    /// The EventBridge id.
    pub fn id(&self) -> &str {
        match self {
            Event::Conversation { id, .. } | Event::Unknown { id, .. } => id,
        }
    }
}

fn reject(event_id: &str, field: impl Into<String>, problem: impl Into<String>) -> Rejection {
    Rejection {
        event_id: event_id.to_string(),
        field: field.into(),
        problem: problem.into(),
    }
}

fn typed<T: DeserializeOwned>(event_id: &str, prefix: &str, v: &Value) -> Result<T, Rejection> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde names a missing field in its message; other messages may
        // quote the value, so they are replaced.
        match inner
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            Some(missing) => {
                let field = if path == "." {
                    missing.to_string()
                } else {
                    format!("{path}.{missing}")
                };
                reject(event_id, format!("{prefix}{field}"), "is missing")
            }
            None => reject(
                event_id,
                format!("{prefix}{path}"),
                "has the wrong type or value",
            ),
        }
    })
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

/// `8-4-4-4-12` hexadecimal digits: how Genesys Cloud writes every
/// conversation, participant, session, flow, division and outcome id. Ids go
/// into sort keys and Platform API paths, so nothing else is let through.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
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
    let id = match v.get("id") {
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= MAX_EVENT_ID_BYTES
                && s.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            s.clone()
        }
        Some(_) => {
            return Err(reject(
                "<none>",
                "id",
                format!("must be 1 to {MAX_EVENT_ID_BYTES} printable ASCII characters"),
            ));
        }
        None => return Err(reject("<none>", "id", "is missing")),
    };
    if !v.is_object() {
        return Err(reject(&id, ".", "must be a JSON object"));
    }
    let envelope: EventBridgeEvent<Value> = typed(&id, "", v)?;
    let topic_name = match envelope.detail.get("topicName") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(reject(&id, "detail.topicName", "must be a string")),
        None if envelope.detail_type.starts_with(CONVERSATION_PREFIX) => {
            return Err(reject(&id, "detail.topicName", "is missing"));
        }
        None => "",
    };
    let time_ms = envelope.time.map(|t| t.timestamp_millis()).unwrap_or(0);
    let Some(rest) = topic_name.strip_prefix(CONVERSATION_PREFIX) else {
        return Ok(Event::Unknown {
            id,
            detail_type: envelope.detail_type,
            time_ms,
        });
    };
    let topic = rest
        .split_once('.')
        .and_then(|(_, suffix)| Topic::from_suffix(suffix).map(|t| (t, suffix)));
    let Some((topic, _)) = topic else {
        return Ok(Event::Unknown {
            id,
            detail_type: envelope.detail_type,
            time_ms,
        });
    };
    let detail: GenesysDetail = typed(&id, "detail.", &envelope.detail)?;
    if !detail.event_body.is_object() {
        return Err(reject(&id, "detail.eventBody", "must be a JSON object"));
    }
    let prefix = "detail.eventBody.";
    let body = match topic {
        Topic::FlowStart | Topic::FlowEnd => Body::Flow(typed(&id, prefix, &detail.event_body)?),
        Topic::FlowOutcome => Body::FlowOutcome(typed(&id, prefix, &detail.event_body)?),
        _ => Body::Participant(typed(&id, prefix, &detail.event_body)?),
    };
    check_body(&id, &body)?;
    let conversation_id = match &body {
        Body::Flow(b) => b.conversation_id.clone(),
        Body::FlowOutcome(b) => b.conversation_id.clone(),
        Body::Participant(b) => b.conversation_id.clone(),
    };
    Ok(Event::Conversation {
        id,
        topic,
        conversation_id,
        body,
    })
}

/// The bounds every typed body must keep: UUID-shaped ids, times between
/// 2000 and 2100, durations of at most 31 days, names of at most
/// [`MAX_NAME_BYTES`].
fn check_body(id: &str, body: &Body) -> Result<(), Rejection> {
    const P: &str = "detail.eventBody.";
    let uuid = |field: &str, v: Option<&str>| match v {
        Some(v) if !is_uuid(v) => Err(reject(id, format!("{P}{field}"), "must be a UUID")),
        _ => Ok(()),
    };
    let name = |field: &str, v: Option<&str>| match v {
        Some(v) if v.len() > MAX_NAME_BYTES => Err(reject(
            id,
            format!("{P}{field}"),
            format!("must be at most {MAX_NAME_BYTES} bytes"),
        )),
        _ => Ok(()),
    };
    let time = |field: &str, v: Option<i64>| match v {
        Some(t) if !(MIN_EVENT_TIME_MS..MAX_EVENT_TIME_MS).contains(&t) => Err(reject(
            id,
            format!("{P}{field}"),
            "must be an epoch-ms time between 2000 and 2100",
        )),
        _ => Ok(()),
    };
    let duration = |v: Option<i64>| match v {
        Some(d) if !(0..=MAX_DURATION_MS).contains(&d) => Err(reject(
            id,
            format!("{P}connectedDurationMs"),
            "must be from 0 to 31 days",
        )),
        _ => Ok(()),
    };
    time("eventTime", Some(body.event_time()))?;
    match body {
        Body::Flow(b) => {
            uuid("conversationId", Some(&b.conversation_id))?;
            uuid("participantId", b.participant_id.as_deref())?;
            uuid("sessionId", b.session_id.as_deref())?;
            uuid("flowId", Some(&b.flow_id))?;
            uuid("divisionId", b.division_id.as_deref())?;
            name("mediaType", b.media_type.as_deref())?;
            name("flowType", Some(&b.flow_type))?;
            name("flowVersion", b.flow_version.as_deref())?;
            name("disconnectType", b.disconnect_type.as_deref())?;
            name("exitReason", b.exit_reason.as_deref())?;
            name("transferType", b.transfer_type.as_deref())?;
            duration(b.connected_duration_ms)
        }
        Body::FlowOutcome(b) => {
            uuid("conversationId", Some(&b.conversation_id))?;
            uuid("flowId", Some(&b.flow_id))?;
            uuid("flowOutcomeId", Some(&b.flow_outcome_id))?;
            name("flowType", Some(&b.flow_type))?;
            name("flowOutcomeValue", Some(&b.flow_outcome_value))?;
            time("flowOutcomeStartTime", b.flow_outcome_start_time)?;
            time("flowOutcomeEndTime", b.flow_outcome_end_time)
        }
        Body::Participant(b) => {
            uuid("conversationId", Some(&b.conversation_id))?;
            uuid("participantId", b.participant_id.as_deref())?;
            uuid("sessionId", b.session_id.as_deref())?;
            uuid("queueId", b.queue_id.as_deref())?;
            name("mediaType", b.media_type.as_deref())?;
            name("userId", b.user_id.as_deref())?;
            name("disconnectType", b.disconnect_type.as_deref())?;
            duration(b.connected_duration_ms)
        }
    }
}

/// Rejects a conversation event whose `eventTime` lies outside
/// [`now_ms - max_age_ms`, `now_ms + MAX_CLOCK_SKEW_MS`]: older than its
/// marker would live (a duplicate could no longer be recognised), or from
/// the future. Other events pass.
pub fn check_event_time(event: &Event, now_ms: i64, max_age_ms: i64) -> Result<(), Rejection> {
    let Event::Conversation { id, body, .. } = event else {
        return Ok(());
    };
    let t = body.event_time();
    let oldest = now_ms.saturating_sub(max_age_ms);
    let newest = now_ms.saturating_add(MAX_CLOCK_SKEW_MS);
    if t < oldest {
        return Err(reject(
            id,
            "detail.eventBody.eventTime",
            format!(
                "is older than the {} days an event is remembered",
                max_age_ms / 86_400_000
            ),
        ));
    }
    if t > newest {
        return Err(reject(
            id,
            "detail.eventBody.eventTime",
            "is more than 5 minutes in the future",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(topic: &str, body: Value) -> Value {
        json!({
            "version": "0",
            "id": "e-1",
            "detail-type": format!("v2.detail.events.conversation.{{id}}.{topic}"),
            "source": "aws.partner/genesys.com/cloud/org/suffix",
            "account": "123456789012",
            "time": "2026-11-20T15:02:30Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "topicName": format!("v2.detail.events.conversation.c-1.{topic}"),
                "version": "2",
                "eventBody": body,
            }
        })
    }

    #[test]
    fn a_flow_end_parses_into_its_typed_body() {
        let e = parse(&envelope(
            "flow.end",
            json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT",
                   "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c", "exitReason": "TRANSFER", "transferType": "ACD",
                   "connectedDurationMs": 5_000, "ani": "tel:+15550100"}),
        ))
        .expect("valid");
        let Event::Conversation {
            topic: Topic::FlowEnd,
            body: Body::Flow(b),
            ..
        } = e
        else {
            panic!("not a flow.end: {e:?}");
        };
        assert_eq!(b.flow_id, "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c");
        assert_eq!(b.connected_duration_ms, Some(5_000));
        assert_eq!(b.transfer_type.as_deref(), Some("ACD"));
    }

    #[test]
    fn a_resend_with_a_new_id_has_the_same_content_key() {
        let body = json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "participantId": "a9d8c7b6-1111-4222-8333-444455556666",
                          "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"});
        let first = parse(&envelope("flow.end", body.clone())).expect("valid");
        let mut again = envelope("flow.end", body);
        again["id"] = json!("e-2");
        let again = parse(&again).expect("valid");
        assert_ne!(first.id(), again.id());
        assert_eq!(first.content_key(), again.content_key());
        let start = parse(&envelope(
            "flow.start",
            json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "participantId": "a9d8c7b6-1111-4222-8333-444455556666",
                   "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"}),
        ))
        .expect("valid");
        assert_ne!(first.content_key(), start.content_key(), "the topic counts");
    }

    #[test]
    fn other_topics_are_unknown_not_errors() {
        let mut v = envelope("flow.end", json!({}));
        v["detail"]["topicName"] = json!("v2.users.u-1.presence");
        v["detail-type"] = json!("v2.users.{id}.presence");
        assert!(matches!(parse(&v), Ok(Event::Unknown { .. })));
        let v = envelope("wrapup", json!({"eventTime": 1_795_186_950_107_i64}));
        assert!(matches!(parse(&v), Ok(Event::Unknown { .. })));
    }

    #[test]
    fn rejections_name_the_field_and_never_the_value() {
        let v = envelope(
            "flow.end",
            json!({"eventTime": "tel:+15550100", "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f",
                   "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"}),
        );
        let r = parse(&v).expect_err("wrong type");
        assert_eq!(r.field, "detail.eventBody.eventTime");
        assert!(!r.to_string().contains("15550100"), "{r}");
        let v = envelope(
            "flow.end",
            json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT"}),
        );
        assert_eq!(
            parse(&v).expect_err("missing").field,
            "detail.eventBody.flowId"
        );
        for (body, field) in [
            (
                json!({"eventTime": 0, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"}),
                "detail.eventBody.eventTime",
            ),
            (
                json!({"eventTime": i64::MAX, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c",
                       "connectedDurationMs": 60_000}),
                "detail.eventBody.eventTime",
            ),
            (
                json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT",
                       "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c", "connectedDurationMs": i64::MAX}),
                "detail.eventBody.connectedDurationMs",
            ),
            (
                json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "../../tokens/me?x=", "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"}),
                "detail.eventBody.conversationId",
            ),
            (
                json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c", "connectedDurationMs": -1}),
                "detail.eventBody.connectedDurationMs",
            ),
        ] {
            assert_eq!(
                parse(&envelope("flow.end", body)).expect_err(field).field,
                field
            );
        }
        assert_eq!(parse_slice(b"{not json").expect_err("json").field, ".");
        let long = "x".repeat(MAX_EVENT_ID_BYTES + 1);
        assert_eq!(parse(&json!({"id": long})).expect_err("id").field, "id");
        assert_eq!(parse(&json!({"id": ""})).expect_err("id").field, "id");
    }

    #[test]
    fn the_org_comes_from_the_partner_source() {
        let org = "3f0c1a2b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
        let mut v = envelope("user.end", json!({}));
        v["source"] = json!(format!("aws.partner/genesys.com/cloud/{org}/va-analytics"));
        assert_eq!(org_of(&v).expect("org"), org);
        v["source"] = json!(format!(
            "aws.partner/genesys.com/cloud/{}/va-analytics",
            org.to_uppercase()
        ));
        assert_eq!(org_of(&v).expect("org"), org, "one form: lowercase");
        for bad in [
            json!("aws.partner/genesys.com/cloud/org/suffix"),
            json!(format!("aws.partner/genesys.com/cloud/{org}/")),
            json!(format!("aws.partner/genesys.com/cloud/{org}")),
            json!(format!("aws.partner/other.com/cloud/{org}/x")),
            json!(format!("custom.{org}")),
            json!(7),
        ] {
            v["source"] = bad.clone();
            let e = org_of(&v).expect_err("rejected");
            assert_eq!(e.field, "source", "{bad}");
        }
        v.as_object_mut().expect("object").remove("source");
        assert_eq!(org_of(&v).expect_err("missing").problem, "is missing");
    }

    #[test]
    fn ids_must_be_uuids_and_names_short() {
        let ok = json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"});
        assert!(parse(&envelope("flow.end", ok.clone())).is_ok());
        for (field, bad) in [
            ("flowId", json!("../../tokens/me?x=")),
            (
                "flowId",
                json!("c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c".to_uppercase() + "0"),
            ),
            ("flowId", json!("c2a1f0e47b3d4e59a8c61d2e3f4a5b6c")),
            ("conversationId", json!("x".repeat(4096))),
            ("participantId", json!("p-1")),
            (
                "divisionId",
                json!("{c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c}"),
            ),
            ("exitReason", json!("r".repeat(MAX_NAME_BYTES + 1))),
        ] {
            let mut body = ok.clone();
            body[field] = bad;
            let r = parse(&envelope("flow.end", body)).expect_err(field);
            assert_eq!(r.field, format!("detail.eventBody.{field}"));
        }
        assert!(is_uuid("c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"));
        assert!(is_uuid(
            &"c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c".to_uppercase()
        ));
    }

    #[test]
    fn event_times_outside_the_remembered_window_are_rejected() {
        let e = parse(&envelope(
            "flow.start",
            json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"}),
        ))
        .expect("valid");
        let t = 1_795_186_950_107_i64;
        let day = 86_400_000;
        assert!(check_event_time(&e, t, 16 * day).is_ok());
        assert!(check_event_time(&e, t - MAX_CLOCK_SKEW_MS, 16 * day).is_ok());
        assert!(check_event_time(&e, t - MAX_CLOCK_SKEW_MS - 1, 16 * day).is_err());
        assert!(check_event_time(&e, t + 16 * day, 16 * day).is_ok());
        assert!(check_event_time(&e, t + 16 * day + 1, 16 * day).is_err());
        assert!(check_event_time(&e, i64::MIN, i64::MAX).is_err());
        assert!(check_event_time(&e, i64::MAX, i64::MAX).is_ok());
    }
}
