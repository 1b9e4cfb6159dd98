//! What one event adds to which per-minute bucket. Pure: no I/O, so every
//! KPI rule is unit-tested without a server.

use std::collections::BTreeMap;

use serde::Serialize;
use va_events::{Body, Event, Topic};

/// Start of the minute containing `ms`.
pub fn minute_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(60_000)
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
    pub const DURATION_MS_SUM: &str = "duration_ms_sum";
    pub const DURATION_COUNT: &str = "duration_count";
    /// `d_le_<seconds>`: sessions that lasted at most that long (one bucket each).
    pub const DURATION_BUCKET_PREFIX: &str = "d_le_";
    /// `o#<outcome id>#success` / `#failure`.
    pub const OUTCOME_PREFIX: &str = "o#";
    /// `i#<intent name>`: final intents of ended sessions (from enrichment).
    pub const INTENT_PREFIX: &str = "i#";
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
    let total: u64 = bounds.iter().map(|(_, c)| c).sum();
    if total == 0 {
        return None;
    }
    let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (bound, c) in bounds {
        seen += c;
        if seen >= rank {
            return Some(bound.unwrap_or(u64::MAX));
        }
    }
    None
}

/// How a bot session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub enum ExitClass {
    Contained,
    Escalated,
    Abandoned,
    RecognitionFailure,
    Error,
    Other,
}

/// Classifies a `flow.end` by `exitReason` and `transferType`.
pub fn classify(exit_reason: Option<&str>, transfer_type: Option<&str>) -> ExitClass {
    let reason = exit_reason.unwrap_or_default();
    if reason.starts_with("RECOGNITION_FAILURE") {
        ExitClass::RecognitionFailure
    } else if reason.starts_with("FLOW_ERROR") {
        ExitClass::Error
    } else if reason == "TRANSFER" {
        match transfer_type {
            Some("ACD" | "USER" | "GROUP") => ExitClass::Escalated,
            _ => ExitClass::Other,
        }
    } else if matches!(reason, "DISCONNECT" | "SESSION_EXPIRE_DISCONNECT") {
        ExitClass::Abandoned
    } else if matches!(reason, "FLOW_DISCONNECT" | "FLOW_EXIT" | "USER_EXIT") {
        ExitClass::Contained
    } else {
        ExitClass::Other
    }
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
            max_active_minutes: 45,
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

/// What enrichment found for an ended session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Enrichment {
    /// The last reporting turn's intent name.
    pub final_intent: Option<String>,
    /// The session's `botResult`.
    pub bot_result: Option<String>,
}

/// Whose bucket: the whole org, or one flow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Scope {
    /// Every flow.
    Org,
    /// One flow, by id.
    Flow(String),
}

impl Scope {
    /// The bucket items' partition key.
    pub fn pk(&self) -> String {
        match self {
            Scope::Org => "agg#org".into(),
            Scope::Flow(id) => format!("agg#flow#{id}"),
        }
    }
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
    /// Counter deltas per (scope, minute start).
    pub buckets: BTreeMap<(Scope, i64), BTreeMap<String, i64>>,
}

impl Plan {
    fn add(&mut self, scope: &Scope, minute_ms: i64, name: &str, n: i64) {
        *self
            .buckets
            .entry((scope.clone(), minute_of(minute_ms)))
            .or_default()
            .entry(name.to_string())
            .or_default() += n;
    }

    /// Adds to the org bucket and the flow's bucket.
    fn both(&mut self, flow: &Scope, minute_ms: i64, name: &str, n: i64) {
        self.add(&Scope::Org, minute_ms, name, n);
        self.add(flow, minute_ms, name, n);
    }
}

/// What one event contributes. Pure: no I/O.
pub fn plan(event: &Event, cfg: &KpiConfig, enrichment: Option<&Enrichment>) -> Plan {
    let mut p = Plan {
        event_id: event.id().to_string(),
        ..Plan::default()
    };
    let (topic, body) = match event {
        Event::Unknown { time_ms, .. } => {
            p.add(&Scope::Org, *time_ms, attr::EVENTS, 1);
            p.add(&Scope::Org, *time_ms, attr::UNKNOWN_TOPICS, 1);
            return p;
        }
        Event::Conversation { topic, body, .. } => (*topic, body),
    };
    p.add(&Scope::Org, body.event_time(), attr::EVENTS, 1);
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
            let flow = Scope::Flow(b.flow_id.clone());
            let t = b.event_time;
            p.both(&flow, t, attr::ENDED, 1);
            let class = match classify(b.exit_reason.as_deref(), b.transfer_type.as_deref()) {
                ExitClass::Contained => attr::CONTAINED,
                ExitClass::Escalated => attr::ESCALATED,
                ExitClass::Abandoned => attr::ABANDONED,
                ExitClass::RecognitionFailure => attr::RECOGNITION_FAILURES,
                ExitClass::Error => attr::ERRORS,
                ExitClass::Other => attr::OTHER_EXITS,
            };
            p.both(&flow, t, class, 1);
            if let Some(d) = b.connected_duration_ms {
                p.both(&flow, t, attr::DURATION_MS_SUM, d);
                p.both(&flow, t, attr::DURATION_COUNT, 1);
                p.both(&flow, t, &duration_bucket(d), 1);
                // Concurrency: the session was active in every minute it spans.
                let first =
                    minute_of(t - d).max(minute_of(t) - (cfg.max_active_minutes - 1) * 60_000);
                let mut m = first;
                while m <= minute_of(t) {
                    p.both(&flow, m, attr::ACTIVE, 1);
                    m += 60_000;
                }
            }
            if let Some(intent) = enrichment.and_then(|e| e.final_intent.as_deref()) {
                p.both(&flow, t, &format!("{}{intent}", attr::INTENT_PREFIX), 1);
            }
        }
        (Topic::FlowOutcome, Body::FlowOutcome(b)) if cfg.is_bot(&b.flow_type) => {
            let value = if b.flow_outcome_value.eq_ignore_ascii_case("SUCCESS") {
                "success"
            } else {
                "failure"
            };
            let name = format!("{}{}#{value}", attr::OUTCOME_PREFIX, b.flow_outcome_id);
            p.both(&Scope::Flow(b.flow_id.clone()), b.event_time, &name, 1);
        }
        _ => {}
    }
    p
}

/// Whether `event` is a bot `flow.end` that enrichment should look up.
pub fn wants_enrichment(event: &Event, cfg: &KpiConfig) -> bool {
    matches!(event, Event::Conversation { topic: Topic::FlowEnd, body: Body::Flow(b), .. } if cfg.is_bot(&b.flow_type))
}

