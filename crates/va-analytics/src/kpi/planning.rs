//! What each event topic adds: a bot session's start, end and outcome, and
//! a queue entry that escalates the hand-backs before it.

use va_events::{Body, Event, FlowBody, FlowOutcomeBody, ParticipantBody, Topic};

use super::{
    ConversationState, ExitClass, HandBack, MAX_ACTIVE_MINUTES, PendingEnrichment, Plan,
    QUEUE_AFTER_EXIT_TOLERANCE_MS, Scope, attr, classify, duration_bucket, hand_back_key,
    minute_of,
};

/// Which flow types count as Virtual Agent sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpiConfig {
    /// `flowType` values counted as bot sessions (upper case).
    pub bot_flow_types: Vec<String>,
    /// `active` is added to at most this many minutes per session.
    pub max_active_minutes: i64,
}

impl Default for KpiConfig {
    fn default() -> Self {
        Self {
            bot_flow_types: vec!["BOT".into(), "DIGITALBOT".into()],
            max_active_minutes: MAX_ACTIVE_MINUTES,
        }
    }
}

impl KpiConfig {
    /// Whether `flow_type` is a bot flow.
    pub fn is_bot(&self, flow_type: &str) -> bool {
        self.bot_flow_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(flow_type))
    }
}

/// Whether `event` must be planned with its conversation's state: a bot
/// session that handed control back, or a queue entry.
pub fn needs_state(event: &Event, cfg: &KpiConfig) -> bool {
    match event {
        Event::Conversation {
            topic: Topic::AcdStart,
            ..
        } => true,
        Event::Conversation {
            topic: Topic::FlowEnd,
            body: Body::Flow(b),
            ..
        } => {
            cfg.is_bot(&b.flow_type)
                && classify(b.exit_reason.as_deref(), b.transfer_type.as_deref()).handed_back
        }
        _ => false,
    }
}

/// What one event contributes, given its conversation's state when
/// [`needs_state`] says so (`None` reads as empty). Pure: no I/O.
pub fn plan(event: &Event, cfg: &KpiConfig, state: Option<&ConversationState>) -> Plan {
    let mut p = Plan {
        event_id: event.id().to_string(),
        marker: event.content_key(),
        ..Plan::default()
    };
    if let Event::Conversation {
        conversation_id, ..
    } = event
    {
        p.conversation_id = Some(conversation_id.clone());
    }
    // An event that changes no KPI (another topic, a non-bot flow, a
    // customer or agent leg) plans nothing: handling it twice is harmless,
    // so it needs no marker and costs no write. Event counts are metrics
    // (`EventsProcessed`, `UnknownTopics`), not stored counters.
    let (topic, body) = match event {
        Event::Unknown { .. } => return p,
        Event::Conversation { topic, body, .. } => (*topic, body),
    };
    match (topic, body) {
        (Topic::FlowStart, Body::Flow(b)) if cfg.is_bot(&b.flow_type) => {
            p.both(
                &Scope::Flow(b.flow_id.clone()),
                b.event_time,
                attr::STARTED,
                1,
            );
        }
        (Topic::FlowEnd, Body::Flow(b)) if cfg.is_bot(&b.flow_type) => {
            plan_end(&mut p, b, cfg, state, event);
        }
        (Topic::FlowOutcome, Body::FlowOutcome(b)) if cfg.is_bot(&b.flow_type) => {
            plan_outcome(&mut p, b);
        }
        (Topic::AcdStart, Body::Participant(b)) => plan_queue(&mut p, b, state),
        _ => {}
    }
    p
}

/// A bot session's end: ended, its exit class, its duration, and the
/// enrichment it waits for.
fn plan_end(
    p: &mut Plan,
    b: &FlowBody,
    cfg: &KpiConfig,
    state: Option<&ConversationState>,
    event: &Event,
) {
    let flow = Scope::Flow(b.flow_id.clone());
    let t = b.event_time;
    p.both(&flow, t, attr::ENDED, 1);
    let key = hand_back_key(
        &b.flow_id,
        b.participant_id.as_deref().or(b.session_id.as_deref()),
        t,
    );
    let class = exit_class(p, b, state, &key);
    p.both(&flow, t, class.attr(), 1);
    if let Some(d) = b.connected_duration_ms {
        plan_duration(p, &flow, t, d, cfg);
    }
    if let Event::Conversation {
        conversation_id, ..
    } = event
    {
        p.pending = Some(PendingEnrichment {
            conversation_id: conversation_id.clone(),
            flow_id: b.flow_id.clone(),
            session_key: key,
            end_ms: t,
        });
    }
}

/// The class an end counts under now. A hand-back goes into the
/// conversation's state under `key`, so a later queue can still escalate
/// it; a queue already seen escalates it at once.
fn exit_class(
    p: &mut Plan,
    b: &FlowBody,
    state: Option<&ConversationState>,
    key: &str,
) -> ExitClass {
    let c = classify(b.exit_reason.as_deref(), b.transfer_type.as_deref());
    if !c.handed_back {
        return c.class;
    }
    let t = b.event_time;
    let mut s = state.cloned().unwrap_or_default();
    let escalated = s.queued_after(t);
    s.hand_backs.insert(
        key.to_string(),
        HandBack {
            flow_id: b.flow_id.clone(),
            end_ms: t,
            class: c.class,
            escalated,
        },
    );
    p.state = Some(s);
    if escalated {
        ExitClass::Escalated
    } else {
        c.class
    }
}

/// A session's duration (sum, count, histogram bucket) and its span in
/// minutes, in the end minute `t`.
fn plan_duration(p: &mut Plan, flow: &Scope, t: i64, d: i64, cfg: &KpiConfig) {
    p.both(flow, t, attr::DURATION_MS_SUM, d);
    p.both(flow, t, attr::DURATION_COUNT, 1);
    p.both(flow, t, &duration_bucket(d), 1);
    // Concurrency: one counter in the end minute, keyed by how many
    // minutes the session spans; readers derive "active" per minute from
    // it (`active_from_spans`), so an end writes one bucket, not one per
    // minute spanned.
    let last = minute_of(t);
    let first = minute_of(t.saturating_sub(d));
    let minutes = (last.saturating_sub(first) / 60_000).saturating_add(1);
    let span = minutes.clamp(1, cfg.max_active_minutes.clamp(1, MAX_ACTIVE_MINUTES));
    p.both(flow, t, &format!("{}{span}", attr::SPAN_PREFIX), 1);
}

/// A bot flow's outcome: success, failure or unknown, per outcome id.
fn plan_outcome(p: &mut Plan, b: &FlowOutcomeBody) {
    let value = match b.flow_outcome_value.to_ascii_uppercase().as_str() {
        "SUCCESS" => "success",
        "FAILURE" => "failure",
        _ => "unknown",
    };
    let name = format!("{}{}#{value}", attr::OUTCOME_PREFIX, b.flow_outcome_id);
    p.both(&Scope::Flow(b.flow_id.clone()), b.event_time, &name, 1);
}

/// A queue entry: the conversation's latest, escalating every hand-back it
/// follows (within [`QUEUE_AFTER_EXIT_TOLERANCE_MS`]).
fn plan_queue(p: &mut Plan, b: &ParticipantBody, state: Option<&ConversationState>) {
    let mut s = state.cloned().unwrap_or_default();
    s.last_queued_at = Some(
        s.last_queued_at
            .map_or(b.event_time, |q| q.max(b.event_time)),
    );
    let at = b.event_time;
    s.escalate(p, |_, h| {
        at >= h.end_ms.saturating_sub(QUEUE_AFTER_EXIT_TOLERANCE_MS)
    });
    p.state = Some(s);
}
