//! A parsed event and what makes two deliveries of it one event.

use crate::bodies::Body;
use crate::topics::Topic;

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
