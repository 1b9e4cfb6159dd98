//! The limits an event must keep and the [`Rejection`] of one that does not.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bodies::{Body, FlowBody, FlowOutcomeBody, ParticipantBody};
use crate::event::Event;

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

pub(crate) fn reject(
    event_id: &str,
    field: impl Into<String>,
    problem: impl Into<String>,
) -> Rejection {
    Rejection {
        event_id: event_id.to_string(),
        field: field.into(),
        problem: problem.into(),
    }
}

/// Deserializes `v` into `T`, or rejects the field (under `prefix`) that
/// did not fit, without quoting its value.
pub(crate) fn typed<T: DeserializeOwned>(
    event_id: &str,
    prefix: &str,
    v: &Value,
) -> Result<T, Rejection> {
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

/// The bounds every typed body must keep: UUID-shaped ids, times between
/// 2000 and 2100, durations of at most 31 days, names of at most
/// [`MAX_NAME_BYTES`].
pub(crate) fn check_body(id: &str, body: &Body) -> Result<(), Rejection> {
    let c = BodyCheck { id };
    c.time("eventTime", Some(body.event_time()))?;
    match body {
        Body::Flow(b) => c.flow(b),
        Body::FlowOutcome(b) => c.flow_outcome(b),
        Body::Participant(b) => c.participant(b),
    }
}

/// The checks of one event's body, each rejecting the field it names.
struct BodyCheck<'a> {
    /// The event's id, for the rejection.
    id: &'a str,
}

impl BodyCheck<'_> {
    const PREFIX: &'static str = "detail.eventBody.";

    fn flow(&self, b: &FlowBody) -> Result<(), Rejection> {
        self.uuid("conversationId", Some(&b.conversation_id))?;
        self.uuid("participantId", b.participant_id.as_deref())?;
        self.uuid("sessionId", b.session_id.as_deref())?;
        self.uuid("flowId", Some(&b.flow_id))?;
        self.uuid("divisionId", b.division_id.as_deref())?;
        self.name("mediaType", b.media_type.as_deref())?;
        self.name("flowType", Some(&b.flow_type))?;
        self.name("flowVersion", b.flow_version.as_deref())?;
        self.name("disconnectType", b.disconnect_type.as_deref())?;
        self.name("exitReason", b.exit_reason.as_deref())?;
        self.name("transferType", b.transfer_type.as_deref())?;
        self.duration(b.connected_duration_ms)
    }

    fn flow_outcome(&self, b: &FlowOutcomeBody) -> Result<(), Rejection> {
        self.uuid("conversationId", Some(&b.conversation_id))?;
        self.uuid("flowId", Some(&b.flow_id))?;
        self.uuid("flowOutcomeId", Some(&b.flow_outcome_id))?;
        self.name("flowType", Some(&b.flow_type))?;
        self.name("flowOutcomeValue", Some(&b.flow_outcome_value))?;
        self.time("flowOutcomeStartTime", b.flow_outcome_start_time)?;
        self.time("flowOutcomeEndTime", b.flow_outcome_end_time)
    }

    fn participant(&self, b: &ParticipantBody) -> Result<(), Rejection> {
        self.uuid("conversationId", Some(&b.conversation_id))?;
        self.uuid("participantId", b.participant_id.as_deref())?;
        self.uuid("sessionId", b.session_id.as_deref())?;
        self.uuid("queueId", b.queue_id.as_deref())?;
        self.name("mediaType", b.media_type.as_deref())?;
        self.name("userId", b.user_id.as_deref())?;
        self.name("disconnectType", b.disconnect_type.as_deref())?;
        self.duration(b.connected_duration_ms)
    }

    fn fail(&self, field: &str, problem: impl Into<String>) -> Result<(), Rejection> {
        Err(reject(self.id, format!("{}{field}", Self::PREFIX), problem))
    }

    fn uuid(&self, field: &str, v: Option<&str>) -> Result<(), Rejection> {
        match v {
            Some(v) if !is_uuid(v) => self.fail(field, "must be a UUID"),
            _ => Ok(()),
        }
    }

    fn name(&self, field: &str, v: Option<&str>) -> Result<(), Rejection> {
        match v {
            Some(v) if v.len() > MAX_NAME_BYTES => {
                self.fail(field, format!("must be at most {MAX_NAME_BYTES} bytes"))
            }
            _ => Ok(()),
        }
    }

    fn time(&self, field: &str, v: Option<i64>) -> Result<(), Rejection> {
        match v {
            Some(t) if !(MIN_EVENT_TIME_MS..MAX_EVENT_TIME_MS).contains(&t) => {
                self.fail(field, "must be an epoch-ms time between 2000 and 2100")
            }
            _ => Ok(()),
        }
    }

    fn duration(&self, v: Option<i64>) -> Result<(), Rejection> {
        match v {
            Some(d) if !(0..=MAX_DURATION_MS).contains(&d) => {
                self.fail("connectedDurationMs", "must be from 0 to 31 days")
            }
            _ => Ok(()),
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
