//! The conversation topics with a typed body.

use serde::Serialize;

/// What every conversation topic name starts with; the conversation id and
/// the topic's suffix follow.
pub(crate) const CONVERSATION_PREFIX: &str = "v2.detail.events.conversation.";

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

    pub(crate) fn from_suffix(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.suffix() == s)
    }
}
