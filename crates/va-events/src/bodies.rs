//! The typed bodies of the conversation topics: the fields the KPIs read.

use serde::Deserialize;

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

    /// `conversationId`: every typed body carries one.
    pub(crate) fn conversation_id(&self) -> &str {
        match self {
            Body::Flow(b) => &b.conversation_id,
            Body::FlowOutcome(b) => &b.conversation_id,
            Body::Participant(b) => &b.conversation_id,
        }
    }
}
