//! What a conversation remembers between its events: the latest queue
//! entry and the bot sessions that handed control back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ExitClass, Plan, Scope, attr};

/// An `acd.start` this long before a hand-back still counts as after it:
/// the two events of one transfer carry times from different services.
pub const QUEUE_AFTER_EXIT_TOLERANCE_MS: i64 = 5_000;

/// One bot session that handed control back, as a conversation remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandBack {
    /// The bot flow.
    pub flow_id: String,
    /// `flow.end` eventTime.
    pub end_ms: i64,
    /// What it counts as until a queue follows.
    pub class: ExitClass,
    /// A queue followed: it counts as escalated now.
    pub escalated: bool,
}

/// What a conversation's events need to know about each other: the queue
/// entries seen and the bot sessions that handed control back. Events change
/// it under a version check, so their order does not change the counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationState {
    /// The latest `acd.start` eventTime: "a queue after this exit" holds for
    /// some entry exactly when it holds for the latest, so one number is
    /// enough and the order of arrival cannot matter.
    pub last_queued_at: Option<i64>,
    /// Key: flow id and participant (or session) id.
    pub hand_backs: BTreeMap<String, HandBack>,
}

impl ConversationState {
    pub(super) fn queued_after(&self, end_ms: i64) -> bool {
        self.last_queued_at
            .is_some_and(|q| q >= end_ms.saturating_sub(QUEUE_AFTER_EXIT_TOLERANCE_MS))
    }

    /// Escalates the hand-backs `which` selects that are not escalated yet,
    /// moving each from its class to escalated in its own minute.
    pub(super) fn escalate(&mut self, plan: &mut Plan, which: impl Fn(&str, &HandBack) -> bool) {
        for (key, h) in self.hand_backs.iter_mut() {
            if !h.escalated && which(key, h) {
                h.escalated = true;
                let flow = Scope::Flow(h.flow_id.clone());
                plan.both(&flow, h.end_ms, h.class.attr(), -1);
                plan.both(&flow, h.end_ms, attr::ESCALATED, 1);
            }
        }
    }
}

/// The key of one bot session within its conversation: its flow, its
/// participant (or session) and its end time, so two runs of one flow in one
/// conversation never share a key.
pub fn hand_back_key(flow_id: &str, participant: Option<&str>, end_ms: i64) -> String {
    format!("{flow_id}#{}#{end_ms}", participant.unwrap_or("-"))
}
