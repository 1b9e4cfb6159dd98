//! What enrichment adds later: an ended session's final intent and, for a
//! hand-back whose bot result is a transfer, its escalation.

use serde::{Deserialize, Serialize};

use super::{ConversationState, Plan, Scope, attr, is_transfer_result};

/// The final intent of a bot session that has no reporting turns (the
/// customer left before the bot's first turn): counted as `i#none`.
pub const NO_TURNS_INTENT: &str = "none";

/// What enrichment found for an ended session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Enrichment {
    /// The last reporting turn's intent name.
    pub final_intent: Option<String>,
    /// The session's `botResult`.
    pub bot_result: Option<String>,
}

/// A bot session waiting for its final intent and bot result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEnrichment {
    /// The conversation.
    pub conversation_id: String,
    /// The bot flow.
    pub flow_id: String,
    /// [`hand_back_key`](super::hand_back_key) of the session.
    pub session_key: String,
    /// `flow.end` eventTime (about the session's `dateCompleted`).
    pub end_ms: i64,
}

/// What enrichment adds for one session: its final intent in the session's
/// end minute, and, for a session that handed back with a bot result of a
/// transfer, its escalation (through the conversation's state).
pub fn plan_enrichment(
    pending: &PendingEnrichment,
    found: Option<&Enrichment>,
    state: Option<&ConversationState>,
) -> Plan {
    let mut p = Plan {
        event_id: format!("enrichment#{}", pending.session_key),
        marker: format!(
            "enriched#{}#{}",
            pending.conversation_id, pending.session_key
        ),
        conversation_id: Some(pending.conversation_id.clone()),
        ..Plan::default()
    };
    let flow = Scope::Flow(pending.flow_id.clone());
    match found {
        None => p.both(&flow, pending.end_ms, attr::INTENT_UNKNOWN, 1),
        Some(e) => {
            if let Some(intent) = &e.final_intent {
                p.both(
                    &flow,
                    pending.end_ms,
                    &format!("{}{intent}", attr::INTENT_PREFIX),
                    1,
                );
            }
            if e.bot_result.as_deref().is_some_and(is_transfer_result)
                && let Some(s) = state
                && s.hand_backs.contains_key(&pending.session_key)
            {
                let mut s = s.clone();
                s.escalate(&mut p, |key, _| key == pending.session_key);
                p.state = Some(s);
            }
        }
    }
    p
}
