//! What one event adds to which per-minute bucket. Pure: no I/O, so every
//! KPI rule is unit-tested without a server.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use va_events::{Body, Event, FlowBody, Topic};

/// Start of the minute containing `ms`.
pub fn minute_of(ms: i64) -> i64 {
    ms.saturating_sub(ms.rem_euclid(60_000))
}

/// Counter attribute names.
#[allow(missing_docs)]
pub mod attr {
    pub const EVENTS: &str = "events";
    pub const UNKNOWN_TOPICS: &str = "unknown_topics";
    pub const STARTED: &str = "started";
    pub const ENDED: &str = "ended";
    pub const ACTIVE: &str = "active";
    pub const CONTAINED: &str = "contained";
    pub const ESCALATED: &str = "escalated";
    pub const ABANDONED: &str = "abandoned";
    pub const RECOGNITION_FAILURES: &str = "recognition_failures";
    pub const ERRORS: &str = "errors";
    pub const OTHER_EXITS: &str = "other_exits";
    pub const UNKNOWN_OUTCOMES: &str = "unknown_outcomes";
    /// Ended sessions whose intent enrichment gave up on (not in the
    /// analytics API within the enrichment's time limit).
    pub const INTENT_UNKNOWN: &str = "intent_unknown";
    pub const DURATION_MS_SUM: &str = "duration_ms_sum";
    pub const DURATION_COUNT: &str = "duration_count";
    /// `d_le_<seconds>`: sessions that lasted at most that long (one bucket each).
    pub const DURATION_BUCKET_PREFIX: &str = "d_le_";
    /// `o#<outcome id>#success` / `#failure`.
    pub const OUTCOME_PREFIX: &str = "o#";
    /// `i#<intent name>`: final intents of ended sessions (from enrichment).
    pub const INTENT_PREFIX: &str = "i#";
    /// Sessions that ended in this minute and span N minutes (`span_N`);
    /// stored, never shown: readers turn them into [`ACTIVE`].
    pub const SPAN_PREFIX: &str = "span_";
}

/// Upper bounds (seconds) of the duration histogram; the last bucket is `inf`.
pub const DURATION_BOUNDS_S: [u64; 18] = [
    5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 3600,
];

/// The histogram attribute a duration falls in.
pub fn duration_bucket(duration_ms: i64) -> String {
    let secs = (duration_ms.max(0) as u64).div_ceil(1000);
    match DURATION_BOUNDS_S.iter().find(|b| secs <= **b) {
        Some(b) => format!("{}{b}", attr::DURATION_BUCKET_PREFIX),
        None => format!("{}inf", attr::DURATION_BUCKET_PREFIX),
    }
}

/// Percentile (0..=100) of a duration histogram, as the bucket's upper bound in seconds.
pub fn duration_percentile(counters: &BTreeMap<String, i64>, p: f64) -> Option<u64> {
    let count = |b: &str| {
        counters
            .get(&format!("{}{b}", attr::DURATION_BUCKET_PREFIX))
            .copied()
            .unwrap_or(0)
            .max(0) as u64
    };
    let mut bounds: Vec<(Option<u64>, u64)> = DURATION_BOUNDS_S
        .iter()
        .map(|b| (Some(*b), count(&b.to_string())))
        .collect();
    bounds.push((None, count("inf")));
    let total: u64 = bounds.iter().fold(0u64, |a, (_, c)| a.saturating_add(*c));
    if total == 0 {
        return None;
    }
    let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
    let mut seen: u64 = 0;
    for (bound, c) in bounds {
        seen = seen.saturating_add(c);
        if seen >= rank {
            return Some(bound.unwrap_or(u64::MAX));
        }
    }
    None
}

/// How a bot session ended, one class per session. docs/DESIGN.md ("KPI
/// definitions") gives each class's meaning and source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ExitClass {
    /// Never reached a queue or agent after the bot: the bot disconnected
    /// (`FLOW_DISCONNECT`), or handed back (`USER_EXIT`, `FLOW_EXIT`) and no
    /// `acd.start` followed.
    Contained,
    /// Reached a queue or agent after the bot: `TRANSFER` to ACD, USER or
    /// GROUP, `RETURN_TO_AGENT`, any `*_EXIT` followed by an `acd.start`, or a
    /// `*_EXIT` whose bot result is a transfer to ACD, a user or a group.
    Escalated,
    /// The customer left or the session expired in the bot (`DISCONNECT`,
    /// `SESSION_EXPIRE_DISCONNECT`).
    Abandoned,
    /// `RECOGNITION_FAILURE_DISCONNECT`, or `RECOGNITION_FAILURE_EXIT` not
    /// followed by a queue.
    RecognitionFailure,
    /// `FLOW_ERROR_DISCONNECT`, or `FLOW_ERROR_EXIT` not followed by a queue.
    Error,
    /// Transferred elsewhere than an agent: a number, voicemail, another flow.
    Other,
    /// `UNKNOWN`, missing, or a value this product does not know.
    Unknown,
}

impl ExitClass {
    /// The counter this class adds to.
    pub fn attr(self) -> &'static str {
        match self {
            ExitClass::Contained => attr::CONTAINED,
            ExitClass::Escalated => attr::ESCALATED,
            ExitClass::Abandoned => attr::ABANDONED,
            ExitClass::RecognitionFailure => attr::RECOGNITION_FAILURES,
            ExitClass::Error => attr::ERRORS,
            ExitClass::Other => attr::OTHER_EXITS,
            ExitClass::Unknown => attr::UNKNOWN_OUTCOMES,
        }
    }
}

/// A `flow.end` classified: its class as far as the event alone tells, and
/// whether the bot handed control back (`*_EXIT`), so a later queue can still
/// make it escalated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    /// The class as far as the event tells.
    pub class: ExitClass,
    /// `USER_EXIT`, `FLOW_EXIT`, `RECOGNITION_FAILURE_EXIT`, `FLOW_ERROR_EXIT`.
    pub handed_back: bool,
}

/// Classifies a `flow.end` by `exitReason` and `transferType` (the SDK
/// model's enums; anything else is `Unknown`).
pub fn classify(exit_reason: Option<&str>, transfer_type: Option<&str>) -> Classified {
    let class = |class| Classified {
        class,
        handed_back: false,
    };
    let back = |class| Classified {
        class,
        handed_back: true,
    };
    if transfer_type == Some("RETURN_TO_AGENT") {
        return class(ExitClass::Escalated);
    }
    match exit_reason.unwrap_or_default() {
        "TRANSFER" => match transfer_type {
            Some("ACD" | "USER" | "GROUP") => class(ExitClass::Escalated),
            Some(
                "NUMBER" | "ACD_VOICEMAIL" | "USER_VOICEMAIL" | "GROUP_VOICEMAIL" | "FLOW"
                | "SECURE_FLOW",
            ) => class(ExitClass::Other),
            _ => class(ExitClass::Unknown),
        },
        "FLOW_DISCONNECT" => class(ExitClass::Contained),
        "USER_EXIT" | "FLOW_EXIT" => back(ExitClass::Contained),
        "DISCONNECT" | "SESSION_EXPIRE_DISCONNECT" => class(ExitClass::Abandoned),
        "RECOGNITION_FAILURE_DISCONNECT" => class(ExitClass::RecognitionFailure),
        "RECOGNITION_FAILURE_EXIT" => back(ExitClass::RecognitionFailure),
        "FLOW_ERROR_DISCONNECT" => class(ExitClass::Error),
        "FLOW_ERROR_EXIT" => back(ExitClass::Error),
        _ => class(ExitClass::Unknown),
    }
}

/// A bot result that means the session went to a queue, a user or a group.
pub fn is_transfer_result(bot_result: &str) -> bool {
    matches!(
        bot_result,
        "TransferToACD" | "TransferToUser" | "TransferToGroup"
    )
}

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
    fn queued_after(&self, end_ms: i64) -> bool {
        self.last_queued_at
            .is_some_and(|q| q >= end_ms.saturating_sub(QUEUE_AFTER_EXIT_TOLERANCE_MS))
    }

    /// Escalates the hand-backs `which` selects that are not escalated yet,
    /// moving each from its class to escalated in its own minute.
    fn escalate(&mut self, plan: &mut Plan, which: impl Fn(&str, &HandBack) -> bool) {
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

/// The most minutes one session adds to "active"; readers look this far
/// past a range for the sessions that were active in it.
pub const MAX_ACTIVE_MINUTES: i64 = 45;

/// "Active" per minute from the `span_N` counters of the minutes each
/// session ended in: a session that ended in minute `k` and spans `N`
/// minutes was active in `k - N + 1 ..= k`. `ended` maps a minute start to
/// its counters; the result maps a minute start to its active sessions.
pub fn active_from_spans(ended: &BTreeMap<i64, BTreeMap<String, i64>>) -> BTreeMap<i64, i64> {
    let mut active: BTreeMap<i64, i64> = BTreeMap::new();
    for (&end, counters) in ended {
        for (name, &n) in counters {
            let Some(span) = name
                .strip_prefix(attr::SPAN_PREFIX)
                .and_then(|s| s.parse::<i64>().ok())
            else {
                continue;
            };
            for back in 0..span.clamp(1, MAX_ACTIVE_MINUTES) {
                let e: &mut i64 = active
                    .entry(end.saturating_sub(back.saturating_mul(60_000)))
                    .or_default();
                *e = e.saturating_add(n);
            }
        }
    }
    active.retain(|_, n| *n != 0);
    active
}

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
    /// [`hand_back_key`] of the session.
    pub session_key: String,
    /// `flow.end` eventTime (about the session's `dateCompleted`).
    pub end_ms: i64,
}

/// Whose bucket: the whole org, or one flow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Scope {
    /// Every flow.
    Org,
    /// One flow, by id.
    Flow(String),
}

/// The bucket item's sort key for a minute.
pub fn minute_sk(minute_ms: i64) -> String {
    format!("m#{:013}", minute_ms.max(0))
}

/// The aggregate changes one event makes, merged per bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The event's EventBridge id.
    pub event_id: String,
    /// The event's content key: its marker, so a re-send counts once.
    pub marker: String,
    /// Counter deltas per (scope, minute start).
    pub buckets: BTreeMap<(Scope, i64), BTreeMap<String, i64>>,
    /// The conversation the state belongs to.
    pub conversation_id: Option<String>,
    /// The conversation's state after this event, when the event reads it.
    pub state: Option<ConversationState>,
    /// A bot session to enrich later.
    pub pending: Option<PendingEnrichment>,
}

/// Distinct outcome ids (and, separately, intent names) kept per flow and
/// day; the rest count under [`OTHER_NAME`], so no bucket grows without
/// bound whatever names arrive.
pub const MAX_NAMES_PER_FLOW_DAY: usize = 100;
/// Where names past the cap (or longer than [`va_events::MAX_NAME_BYTES`]) count.
pub const OTHER_NAME: &str = "other";

/// A kind of open-ended name a counter carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum NameKind {
    /// `o#<outcome id>#success|failure`.
    Outcome,
    /// `i#<intent name>`.
    Intent,
}

impl NameKind {
    /// The registry attribute holding this kind's names.
    pub fn attribute(self) -> &'static str {
        match self {
            NameKind::Outcome => "outcomes",
            NameKind::Intent => "intents",
        }
    }
}

/// The name a counter carries, if it carries one.
fn counter_name(counter: &str) -> Option<(NameKind, &str)> {
    if let Some(rest) = counter.strip_prefix(attr::OUTCOME_PREFIX) {
        let (id, _) = rest.rsplit_once('#')?;
        return Some((NameKind::Outcome, id));
    }
    counter
        .strip_prefix(attr::INTENT_PREFIX)
        .map(|n| (NameKind::Intent, n))
}

fn renamed(counter: &str, to: &str) -> String {
    match counter_name(counter) {
        Some((NameKind::Outcome, _)) => {
            let kind = counter.rsplit_once('#').map_or("", |(_, k)| k);
            format!("{}{to}#{kind}", attr::OUTCOME_PREFIX)
        }
        Some((NameKind::Intent, _)) => format!("{}{to}", attr::INTENT_PREFIX),
        None => counter.to_string(),
    }
}

impl Plan {
    /// The open-ended names this plan counts, per flow and minute: what the
    /// store admits (or sends to [`OTHER_NAME`]) before it writes.
    pub fn names(&self) -> BTreeSet<(NameKind, String, i64, String)> {
        let mut out = BTreeSet::new();
        for ((scope, minute), counters) in &self.buckets {
            let Scope::Flow(flow) = scope else { continue };
            for counter in counters.keys() {
                if let Some((kind, name)) = counter_name(counter)
                    && name != OTHER_NAME
                {
                    out.insert((kind, flow.clone(), *minute, name.to_string()));
                }
            }
        }
        out
    }

    /// Counts `kind`'s `name` under `to` instead, in every scope.
    pub fn rename(&mut self, kind: NameKind, name: &str, to: &str) {
        for counters in self.buckets.values_mut() {
            let moved: Vec<String> = counters
                .keys()
                .filter(|c| counter_name(c) == Some((kind, name)))
                .cloned()
                .collect();
            for c in moved {
                if let Some(n) = counters.remove(&c) {
                    let e = counters.entry(renamed(&c, to)).or_default();
                    *e = e.saturating_add(n);
                }
            }
        }
    }

    /// Changes nothing: no counter, no state, nothing to enrich.
    pub fn is_noop(&self) -> bool {
        self.state.is_none()
            && self.pending.is_none()
            && self.buckets.values().all(|c| c.values().all(|n| *n == 0))
    }

    fn add(&mut self, scope: &Scope, minute_ms: i64, name: &str, n: i64) {
        let e: &mut i64 = self
            .buckets
            .entry((scope.clone(), minute_of(minute_ms)))
            .or_default()
            .entry(name.to_string())
            .or_default();
        *e = e.saturating_add(n);
    }

    /// Adds to the org bucket and the flow's bucket.
    fn both(&mut self, flow: &Scope, minute_ms: i64, name: &str, n: i64) {
        self.add(&Scope::Org, minute_ms, name, n);
        self.add(flow, minute_ms, name, n);
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
            let value = match b.flow_outcome_value.to_ascii_uppercase().as_str() {
                "SUCCESS" => "success",
                "FAILURE" => "failure",
                _ => "unknown",
            };
            let name = format!("{}{}#{value}", attr::OUTCOME_PREFIX, b.flow_outcome_id);
            p.both(&Scope::Flow(b.flow_id.clone()), b.event_time, &name, 1);
        }
        (Topic::AcdStart, Body::Participant(b)) => {
            let mut s = state.cloned().unwrap_or_default();
            s.last_queued_at = Some(
                s.last_queued_at
                    .map_or(b.event_time, |q| q.max(b.event_time)),
            );
            let at = b.event_time;
            s.escalate(&mut p, |_, h| {
                at >= h.end_ms.saturating_sub(QUEUE_AFTER_EXIT_TOLERANCE_MS)
            });
            p.state = Some(s);
        }
        _ => {}
    }
    p
}

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
    let c = classify(b.exit_reason.as_deref(), b.transfer_type.as_deref());
    let key = hand_back_key(
        &b.flow_id,
        b.participant_id.as_deref().or(b.session_id.as_deref()),
        t,
    );
    let mut class = c.class;
    if c.handed_back {
        let mut s = state.cloned().unwrap_or_default();
        let escalated = s.queued_after(t);
        if escalated {
            class = ExitClass::Escalated;
        }
        s.hand_backs.insert(
            key.clone(),
            HandBack {
                flow_id: b.flow_id.clone(),
                end_ms: t,
                class: c.class,
                escalated,
            },
        );
        p.state = Some(s);
    }
    p.both(&flow, t, class.attr(), 1);
    if let Some(d) = b.connected_duration_ms {
        p.both(&flow, t, attr::DURATION_MS_SUM, d);
        p.both(&flow, t, attr::DURATION_COUNT, 1);
        p.both(&flow, t, &duration_bucket(d), 1);
        // Concurrency: one counter in the end minute, keyed by how many
        // minutes the session spans; readers derive "active" per minute from
        // it (`active_from_spans`), so an end writes one bucket, not one per
        // minute spanned.
        let last = minute_of(t);
        let first = minute_of(t.saturating_sub(d));
        let minutes = (last.saturating_sub(first) / 60_000).saturating_add(1);
        let span = minutes.clamp(1, cfg.max_active_minutes.clamp(1, MAX_ACTIVE_MINUTES));
        p.both(&flow, t, &format!("{}{span}", attr::SPAN_PREFIX), 1);
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

#[cfg(test)]
mod tests {
    use super::*;
    use va_events::{FlowBody, FlowOutcomeBody};

    fn flow(topic: Topic, flow_type: &str, body: impl FnOnce(&mut FlowBody)) -> Event {
        let mut b = FlowBody {
            event_time: 1_795_186_950_107,
            conversation_id: "c-1".into(),
            participant_id: None,
            session_id: None,
            media_type: None,
            flow_type: flow_type.into(),
            flow_id: "f-1".into(),
            flow_version: None,
            division_id: None,
            disconnect_type: None,
            connected_duration_ms: None,
            exit_reason: None,
            transfer_type: None,
        };
        body(&mut b);
        Event::Conversation {
            id: "e-1".into(),
            topic,
            conversation_id: "c-1".into(),
            body: Body::Flow(b),
        }
    }

    fn counter(p: &Plan, scope: &Scope, minute: i64, name: &str) -> i64 {
        p.buckets
            .get(&(scope.clone(), minute))
            .and_then(|c| c.get(name))
            .copied()
            .unwrap_or(0)
    }

    #[test]
    fn minutes_and_duration_buckets() {
        assert_eq!(minute_of(1_763_650_950_107), 1_763_650_920_000);
        assert_eq!(minute_of(-1), -60_000);
        assert_eq!(duration_bucket(0), "d_le_5");
        assert_eq!(duration_bucket(5_000), "d_le_5");
        assert_eq!(duration_bucket(5_001), "d_le_10");
        assert_eq!(duration_bucket(i64::MAX), "d_le_inf");
        let h: BTreeMap<String, i64> = [
            ("d_le_5".to_string(), 1),
            ("d_le_60".to_string(), 8),
            ("d_le_inf".to_string(), 1),
        ]
        .into();
        assert_eq!(duration_percentile(&h, 50.0), Some(60));
        assert_eq!(duration_percentile(&h, 10.0), Some(5));
        assert_eq!(duration_percentile(&h, 100.0), Some(u64::MAX));
        assert_eq!(duration_percentile(&BTreeMap::new(), 50.0), None);
    }

    #[test]
    fn a_bot_start_counts_in_the_org_and_flow_buckets() {
        let p = plan(
            &flow(Topic::FlowStart, "DIGITALBOT", |_| {}),
            &KpiConfig::default(),
            None,
        );
        let m = minute_of(1_795_186_950_107);
        assert_eq!(counter(&p, &Scope::Org, m, attr::STARTED), 1);
        assert_eq!(counter(&p, &Scope::Flow("f-1".into()), m, attr::STARTED), 1);
        assert!(!p.is_noop());
        let ivr = plan(
            &flow(Topic::FlowStart, "INBOUNDCALL", |_| {}),
            &KpiConfig::default(),
            None,
        );
        assert_eq!(counter(&ivr, &Scope::Org, m, attr::STARTED), 0, "not a bot");
        assert!(ivr.is_noop(), "changes nothing: no marker, no write");
    }

    #[test]
    fn an_end_adds_duration_and_active_minutes_and_waits_for_its_intent() {
        let e = flow(Topic::FlowEnd, "BOT", |b| {
            b.connected_duration_ms = Some(150_000);
            b.exit_reason = Some("TRANSFER".into());
            b.transfer_type = Some("ACD".into());
            b.participant_id = Some("p-1".into());
        });
        let p = plan(&e, &KpiConfig::default(), None);
        let end = minute_of(1_795_186_950_107);
        let org = |m, n| counter(&p, &Scope::Org, m, n);
        assert_eq!(org(end, attr::ENDED), 1);
        assert_eq!(org(end, attr::ESCALATED), 1);
        assert_eq!(org(end, attr::DURATION_MS_SUM), 150_000);
        assert_eq!(org(end, "d_le_180"), 1);
        // 15:00:00.107 to 15:02:30.107 spans minutes 15:00, 15:01, 15:02:
        // one counter in the end minute, read back as 3 active minutes.
        assert_eq!(org(end, "span_3"), 1);
        assert_eq!(p.buckets.len(), 2, "one org and one flow bucket");
        let ended: BTreeMap<i64, BTreeMap<String, i64>> = p
            .buckets
            .iter()
            .filter(|((s, _), _)| *s == Scope::Org)
            .map(|((_, m), c)| (*m, c.clone()))
            .collect();
        let active = active_from_spans(&ended);
        assert_eq!(
            active.into_iter().collect::<Vec<_>>(),
            vec![(end - 120_000, 1), (end - 60_000, 1), (end, 1)]
        );
        assert_eq!(p.state, None, "a transfer needs no correlation");
        let pending = p.pending.expect("enrichment comes later");
        assert_eq!(pending.session_key, "f-1#p-1#1795186950107");
        let found = Enrichment {
            final_intent: Some("Billing".into()),
            bot_result: Some("TransferToACD".into()),
        };
        let later = plan_enrichment(&pending, Some(&found), None);
        assert_eq!(counter(&later, &Scope::Org, end, "i#Billing"), 1);
        assert_eq!(
            counter(&later, &Scope::Flow("f-1".into()), end, "i#Billing"),
            1
        );
        let gave_up = plan_enrichment(&pending, None, None);
        assert_eq!(counter(&gave_up, &Scope::Org, end, attr::INTENT_UNKNOWN), 1);
        assert_ne!(later.marker, p.marker);
    }

    #[test]
    fn exit_reasons_and_transfer_types_classify_as_documented() {
        let c = |r: &str, t: Option<&str>| classify(Some(r), t);
        assert_eq!(c("FLOW_DISCONNECT", None).class, ExitClass::Contained);
        assert!(c("USER_EXIT", None).handed_back);
        assert!(c("FLOW_EXIT", None).handed_back);
        assert_eq!(c("TRANSFER", Some("ACD")).class, ExitClass::Escalated);
        assert_eq!(c("TRANSFER", Some("GROUP")).class, ExitClass::Escalated);
        assert_eq!(
            c("TRANSFER", Some("RETURN_TO_AGENT")).class,
            ExitClass::Escalated
        );
        assert_eq!(c("TRANSFER", Some("NUMBER")).class, ExitClass::Other);
        assert_eq!(c("TRANSFER", Some("SECURE_FLOW")).class, ExitClass::Other);
        assert_eq!(
            c("SESSION_EXPIRE_DISCONNECT", None).class,
            ExitClass::Abandoned
        );
        assert_eq!(
            c("RECOGNITION_FAILURE_EXIT", None),
            Classified {
                class: ExitClass::RecognitionFailure,
                handed_back: true
            }
        );
        assert_eq!(
            c("FLOW_ERROR_EXIT", None),
            Classified {
                class: ExitClass::Error,
                handed_back: true
            }
        );
        assert_eq!(c("UNKNOWN", None).class, ExitClass::Unknown);
        assert_eq!(classify(None, None).class, ExitClass::Unknown);
        assert_eq!(c("SOMETHING_NEW", None).class, ExitClass::Unknown);
    }

    /// Totals of every counter over the plans of `events` applied in order,
    /// each planned with the state the previous ones left.
    fn totals(events: &[&Event]) -> BTreeMap<(Scope, i64, String), i64> {
        let mut state: Option<ConversationState> = None;
        let mut out = BTreeMap::new();
        for e in events {
            let p = plan(e, &KpiConfig::default(), state.as_ref());
            if p.state.is_some() {
                state = p.state.clone();
            }
            for ((scope, m), counters) in p.buckets {
                for (name, n) in counters {
                    {
                        let e: &mut i64 = out.entry((scope.clone(), m, name)).or_default();
                        *e = e.saturating_add(n);
                    }
                }
            }
        }
        out.retain(|_, v| *v != 0);
        out
    }

    fn acd(at: i64) -> Event {
        Event::Conversation {
            id: format!("acd-{at}"),
            topic: Topic::AcdStart,
            conversation_id: "c-1".into(),
            body: Body::Participant(va_events::ParticipantBody {
                event_time: at,
                conversation_id: "c-1".into(),
                participant_id: Some("q-1".into()),
                session_id: None,
                media_type: None,
                queue_id: Some("queue".into()),
                user_id: None,
                disconnect_type: None,
                connected_duration_ms: None,
            }),
        }
    }

    #[test]
    fn a_hand_back_followed_by_a_queue_is_escalated_in_either_order() {
        let end = 1_795_186_950_107;
        let exit = flow(Topic::FlowEnd, "BOT", |b| {
            b.exit_reason = Some("USER_EXIT".into());
            b.participant_id = Some("p-1".into());
        });
        let queue = acd(end + 300);
        let a = totals(&[&exit, &queue]);
        let b = totals(&[&queue, &exit]);
        assert_eq!(a, b);
        let m = minute_of(end);
        assert_eq!(
            a.get(&(Scope::Org, m, attr::ESCALATED.to_string())),
            Some(&1)
        );
        assert_eq!(a.get(&(Scope::Org, m, attr::CONTAINED.to_string())), None);
        // A queue long before the bot ended does not escalate it.
        let early = acd(end - 600_000);
        let c = totals(&[&early, &exit]);
        assert_eq!(
            c.get(&(Scope::Org, m, attr::CONTAINED.to_string())),
            Some(&1)
        );
        assert_eq!(c, totals(&[&exit, &early]));
    }

    #[test]
    fn a_transfer_bot_result_escalates_a_hand_back_once() {
        let exit = flow(Topic::FlowEnd, "BOT", |b| {
            b.exit_reason = Some("FLOW_EXIT".into());
            b.participant_id = Some("p-1".into());
        });
        let p = plan(&exit, &KpiConfig::default(), None);
        let pending = p.pending.clone().expect("pending");
        let state = p.state.clone().expect("state");
        let found = Enrichment {
            final_intent: None,
            bot_result: Some("TransferToACD".into()),
        };
        let e = plan_enrichment(&pending, Some(&found), Some(&state));
        let m = minute_of(1_795_186_950_107);
        assert_eq!(counter(&e, &Scope::Org, m, attr::CONTAINED), -1);
        assert_eq!(counter(&e, &Scope::Org, m, attr::ESCALATED), 1);
        // A queue after that changes nothing more.
        let after = plan(
            &acd(1_795_186_951_000),
            &KpiConfig::default(),
            e.state.as_ref(),
        );
        assert_eq!(counter(&after, &Scope::Org, m, attr::ESCALATED), 0);
    }

    #[test]
    fn outcomes_count_success_and_failure_per_outcome_id() {
        let e = Event::Conversation {
            id: "e-2".into(),
            topic: Topic::FlowOutcome,
            conversation_id: "c-1".into(),
            body: Body::FlowOutcome(FlowOutcomeBody {
                event_time: 60_000,
                conversation_id: "c-1".into(),
                flow_type: "BOT".into(),
                flow_id: "f-1".into(),
                flow_outcome_id: "o-1".into(),
                flow_outcome_value: "SUCCESS".into(),
                flow_outcome_start_time: None,
                flow_outcome_end_time: None,
            }),
        };
        let p = plan(&e, &KpiConfig::default(), None);
        assert_eq!(counter(&p, &Scope::Org, 60_000, "o#o-1#success"), 1);
    }

    #[test]
    fn names_are_found_and_renamed_in_every_scope() {
        let mut p = Plan::default();
        let flow = Scope::Flow("f".into());
        p.both(&flow, 60_000, "o#o-1#success", 1);
        p.both(&flow, 60_000, "o#o-2#failure", 2);
        p.both(&flow, 60_000, "i#Billing", 1);
        p.both(&flow, 60_000, attr::ENDED, 1);
        let names: Vec<_> = p.names().into_iter().map(|(k, _, _, n)| (k, n)).collect();
        assert_eq!(
            names,
            vec![
                (NameKind::Outcome, "o-1".to_string()),
                (NameKind::Outcome, "o-2".to_string()),
                (NameKind::Intent, "Billing".to_string())
            ]
        );
        p.rename(NameKind::Outcome, "o-2", OTHER_NAME);
        p.rename(NameKind::Intent, "Billing", OTHER_NAME);
        for scope in [Scope::Org, flow] {
            let c = &p.buckets[&(scope, 60_000)];
            assert_eq!(c.get("o#other#failure"), Some(&2));
            assert_eq!(c.get("o#o-1#success"), Some(&1));
            assert_eq!(c.get("i#other"), Some(&1));
            assert!(!c.contains_key("o#o-2#failure") && !c.contains_key("i#Billing"));
        }
        assert_eq!(p.names().len(), 1, "`other` is not admitted again");
    }
}
