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
        let h: BTreeMap<String, i64> = [("d_le_5".to_string(), 1), ("d_le_60".to_string(), 8), ("d_le_inf".to_string(), 1)].into();
        assert_eq!(duration_percentile(&h, 50.0), Some(60));
        assert_eq!(duration_percentile(&h, 10.0), Some(5));
        assert_eq!(duration_percentile(&h, 100.0), Some(u64::MAX));
        assert_eq!(duration_percentile(&BTreeMap::new(), 50.0), None);
    }

    #[test]
    fn a_bot_start_counts_in_the_org_and_flow_buckets() {
        let p = plan(&flow(Topic::FlowStart, "DIGITALBOT", |_| {}), &KpiConfig::default(), None);
        let m = minute_of(1_795_186_950_107);
        assert_eq!(counter(&p, &Scope::Org, m, attr::STARTED), 1);
        assert_eq!(counter(&p, &Scope::Flow("f-1".into()), m, attr::STARTED), 1);
        assert_eq!(counter(&p, &Scope::Org, m, attr::EVENTS), 1);
        let ivr = plan(&flow(Topic::FlowStart, "INBOUNDCALL", |_| {}), &KpiConfig::default(), None);
        assert_eq!(counter(&ivr, &Scope::Org, m, attr::STARTED), 0, "not a bot");
        assert_eq!(counter(&ivr, &Scope::Org, m, attr::EVENTS), 1, "still an event");
    }

    #[test]
    fn an_end_adds_duration_active_minutes_and_the_intent() {
        let e = flow(Topic::FlowEnd, "BOT", |b| {
            b.connected_duration_ms = Some(150_000);
            b.exit_reason = Some("TRANSFER".into());
            b.transfer_type = Some("ACD".into());
        });
        let enrichment = Enrichment {
            final_intent: Some("Billing".into()),
            bot_result: None,
        };
        let p = plan(&e, &KpiConfig::default(), Some(&enrichment));
        let end = minute_of(1_795_186_950_107);
        let org = |m, n| counter(&p, &Scope::Org, m, n);
        assert_eq!(org(end, attr::ENDED), 1);
        assert_eq!(org(end, attr::ESCALATED), 1);
        assert_eq!(org(end, attr::DURATION_MS_SUM), 150_000);
        assert_eq!(org(end, "d_le_180"), 1);
        assert_eq!(org(end, "i#Billing"), 1);
        // 15:00:00.107 to 15:02:30.107 spans minutes 15:00, 15:01, 15:02.
        let active: i64 = p
            .buckets
            .iter()
            .filter(|((s, _), _)| *s == Scope::Org)
            .map(|(_, c)| c.get(attr::ACTIVE).copied().unwrap_or(0))
            .sum();
        assert_eq!(active, 3);
        assert!(wants_enrichment(&e, &KpiConfig::default()));
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
}
