//! Matching pending bot sessions to the sessions and turns the analytics
//! API lists: pure, so the rules are tested without a server.

use std::collections::HashMap;

use serde_json::Value;
use va_analytics::{Enrichment, PendingEnrichment};

use crate::sweep::{date_ms, pending_key};

/// A session as the sessions endpoint reports it (the fields used).
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) created_ms: i64,
    pub(crate) completed_ms: i64,
    pub(crate) bot_result: Option<String>,
}

/// The listed sessions by conversation (entities missing a field are skipped).
pub(crate) fn sessions_by_conversation(entities: Vec<Value>) -> HashMap<String, Vec<Session>> {
    let mut candidates: HashMap<String, Vec<Session>> = HashMap::new();
    for entity in entities {
        let (Some(conversation_id), Some(id), Some(created_ms), Some(completed_ms)) = (
            entity["conversation"]["id"].as_str(),
            entity["id"].as_str(),
            date_ms(&entity["dateCreated"]),
            date_ms(&entity["dateCompleted"]),
        ) else {
            continue;
        };
        candidates
            .entry(conversation_id.to_string())
            .or_default()
            .push(Session {
                id: id.to_string(),
                created_ms,
                completed_ms,
                bot_result: entity["botResult"].as_str().map(str::to_string),
            });
    }
    candidates
}

/// Each pending session with the unclaimed listed session of its
/// conversation whose completion is nearest its end, within `skew`.
pub(crate) fn match_sessions(
    items: &[PendingEnrichment],
    mut candidates: HashMap<String, Vec<Session>>,
    skew: i64,
) -> Vec<(String, Session)> {
    let mut matched = Vec::new();
    for p in items {
        let Some(list) = candidates.get_mut(&p.conversation_id) else {
            continue;
        };
        let nearest = list
            .iter()
            .enumerate()
            .filter(|(_, s)| s.completed_ms.abs_diff(p.end_ms) <= skew.unsigned_abs())
            .min_by_key(|(_, s)| s.completed_ms.abs_diff(p.end_ms))
            .map(|(i, _)| i);
        if let Some(i) = nearest {
            matched.push((pending_key(p), list.swap_remove(i)));
        }
    }
    matched
}

/// Each session's last turn (latest `dateCreated`) and its intent.
pub(crate) fn last_turns(turns: Vec<Value>) -> HashMap<String, (i64, Option<String>)> {
    let mut last_turn: HashMap<String, (i64, Option<String>)> = HashMap::new();
    for turn in turns {
        let Some(session_id) = turn["sessionId"].as_str() else {
            continue;
        };
        let at = date_ms(&turn["dateCreated"]).unwrap_or(i64::MIN);
        let intent = turn["intent"]["name"].as_str().map(str::to_string);
        let slot = last_turn
            .entry(session_id.to_string())
            .or_insert((i64::MIN, None));
        if at >= slot.0 {
            *slot = (at, intent);
        }
    }
    last_turn
}

/// The matched sessions' enrichments. A listed session with no turn in the
/// query over its lifetime had none: the customer left before the bot's
/// first turn.
pub(crate) fn enrichments(
    matched: Vec<(String, Session)>,
    mut last_turn: HashMap<String, (i64, Option<String>)>,
) -> HashMap<String, Enrichment> {
    matched
        .into_iter()
        .map(|(key, s)| {
            let final_intent = match last_turn.remove(&s.id) {
                Some((_, intent)) => intent,
                None => Some(va_analytics::kpi::NO_TURNS_INTENT.to_string()),
            };
            let enrichment = Enrichment {
                final_intent,
                bot_result: s.bot_result,
            };
            (key, enrichment)
        })
        .collect()
}
