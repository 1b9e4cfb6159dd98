//! Virtual Agent traffic: conversations through bot flows as Genesys Cloud
//! EventBridge envelopes (the shape of testkit/fixtures/events/), at a given
//! rate and mix, deterministic from a seed, with the ground truth they add up to.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{Value, json};
use va_analytics::ExitClass;

use crate::sim::{BotSession, BotTurn, SimConversation, TurnIntent};

/// Relative weights of how bot sessions end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mix {
    /// The bot ended the conversation (exitReason FLOW_DISCONNECT).
    pub contained: u32,
    /// Transferred to an agent (exitReason TRANSFER, transferType ACD, USER or GROUP).
    pub escalated: u32,
    /// The customer disconnected in the bot (exitReason DISCONNECT).
    pub abandoned: u32,
    /// The session timed out in the bot (exitReason SESSION_EXPIRE_DISCONNECT).
    pub expired: u32,
    /// exitReason RECOGNITION_FAILURE_DISCONNECT.
    pub recognition_failure: u32,
    /// exitReason FLOW_ERROR_DISCONNECT.
    pub error: u32,
    /// The bot handed back (USER_EXIT or FLOW_EXIT) and the conversation ended.
    pub handed_back: u32,
    /// The bot handed back (USER_EXIT, FLOW_EXIT or RECOGNITION_FAILURE_EXIT)
    /// and the calling flow queued the conversation (`acd.start` follows).
    pub handed_back_to_queue: u32,
    /// exitReason TRANSFER, transferType RETURN_TO_AGENT.
    pub return_to_agent: u32,
    /// exitReason UNKNOWN.
    pub unknown: u32,
    /// Per mille of bot conversations that pass through a second bot flow
    /// first (it hands back with FLOW_EXIT).
    pub two_bots_per_mille: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            contained: 40,
            escalated: 20,
            abandoned: 8,
            expired: 4,
            recognition_failure: 6,
            error: 4,
            handed_back: 7,
            handed_back_to_queue: 7,
            return_to_agent: 2,
            unknown: 2,
            two_bots_per_mille: 100,
        }
    }
}

/// A flow conversations enter. Only bot flow types count as Virtual Agent sessions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowSpec {
    pub id: String,
    pub name: String,
    /// BOT, DIGITALBOT, INBOUNDCALL, ...
    pub flow_type: String,
    pub weight: u32,
}

/// Flow types that count as Virtual Agent sessions by default.
pub const BOT_FLOW_TYPES: [&str; 2] = ["BOT", "DIGITALBOT"];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficConfig {
    pub seed: u64,
    pub sessions_per_minute: u32,
    pub minutes: u32,
    /// Epoch ms of the first minute (rounded down to a minute).
    pub start_ms: i64,
    pub mix: Mix,
    pub flows: Vec<FlowSpec>,
    pub intents: Vec<String>,
    pub outcome_ids: Vec<String>,
    pub org_id: String,
    pub account: String,
    pub region: String,
}

impl Default for TrafficConfig {
    fn default() -> Self {
        let flow = |id: &str, name: &str, t: &str, w| FlowSpec {
            id: id.into(),
            name: name.into(),
            flow_type: t.into(),
            weight: w,
        };
        Self {
            seed: 1,
            sessions_per_minute: 60,
            minutes: 10,
            start_ms: 1_763_650_800_000,
            mix: Mix::default(),
            flows: vec![
                flow(
                    "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c",
                    "Web Messaging Assistant",
                    "DIGITALBOT",
                    50,
                ),
                flow(
                    "6b1e2d3c-4a5f-4e6d-9c7b-8a9f0e1d2c3b",
                    "Voice Virtual Agent",
                    "BOT",
                    30,
                ),
                flow(
                    "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
                    "Main IVR",
                    "INBOUNDCALL",
                    20,
                ),
            ],
            intents: [
                "CheckOrderStatus",
                "ResetPassword",
                "BillingQuestion",
                "TalkToAgent",
                "UpdateAddress",
                "CancelSubscription",
            ]
            .map(String::from)
            .to_vec(),
            outcome_ids: [
                "e5f6a7b8-2222-4333-8444-555566667777",
                "0a9b8c7d-1111-4222-8333-444455556666",
                "7c6b5a49-3333-4444-8555-666677778888",
            ]
            .map(String::from)
            .to_vec(),
            org_id: "7f3c1a52-0d4e-4f1b-9a63-2b8e5c9d0a11".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
        }
    }
}

/// How a generated session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum SessionKind {
    Contained,
    Escalated,
    Abandoned,
    Expired,
    RecognitionFailure,
    Error,
    HandedBack,
    HandedBackToQueue,
    ReturnToAgent,
    Unknown,
}

impl SessionKind {
    /// Every kind.
    pub const ALL: [SessionKind; 10] = [
        SessionKind::Contained,
        SessionKind::Escalated,
        SessionKind::Abandoned,
        SessionKind::Expired,
        SessionKind::RecognitionFailure,
        SessionKind::Error,
        SessionKind::HandedBack,
        SessionKind::HandedBackToQueue,
        SessionKind::ReturnToAgent,
        SessionKind::Unknown,
    ];

    /// How the session counts, by the documented definitions (independent
    /// of the product's classifier: the generator knows what happened).
    pub fn class(self) -> ExitClass {
        match self {
            SessionKind::Contained | SessionKind::HandedBack => ExitClass::Contained,
            SessionKind::Escalated
            | SessionKind::HandedBackToQueue
            | SessionKind::ReturnToAgent => ExitClass::Escalated,
            SessionKind::Abandoned | SessionKind::Expired => ExitClass::Abandoned,
            SessionKind::RecognitionFailure => ExitClass::RecognitionFailure,
            SessionKind::Error => ExitClass::Error,
            SessionKind::Unknown => ExitClass::Unknown,
        }
    }

    /// An `acd.start` follows the bot.
    fn queues(self, transfer_type: Option<&str>) -> bool {
        self == SessionKind::HandedBackToQueue || transfer_type == Some("ACD")
    }
}

/// One event, as EventBridge would deliver it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// When it is delivered (after its `eventTime`).
    pub at_ms: i64,
    pub conversation_id: String,
    /// `detail-type`, e.g. `v2.detail.events.conversation.{id}.flow.end`.
    pub detail_type: String,
    pub envelope: Value,
}

/// Success/failure counts of one flow outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    pub success: u64,
    pub failure: u64,
}

/// The KPIs of one bucket, as the generator knows them to be.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Kpis {
    /// By `flow.start` eventTime.
    pub sessions_started: u64,
    /// This and the next eight by `flow.end` eventTime.
    pub sessions_ended: u64,
    /// Sessions active at some point of the minute (from flow start to flow end).
    pub active: u64,
    pub contained: u64,
    pub escalated: u64,
    pub abandoned: u64,
    pub recognition_failures: u64,
    pub errors: u64,
    pub other_exits: u64,
    pub unknown_outcomes: u64,
    pub duration_ms_sum: u64,
    pub duration_count: u64,
    /// Final intent of ended sessions (known through enrichment only).
    pub intents: BTreeMap<String, u64>,
    /// By `flow.outcome` eventTime.
    pub outcomes: BTreeMap<String, OutcomeCounts>,
}

/// What the generated traffic adds up to, for exact checks of aggregates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroundTruth {
    /// Org-wide, all time.
    pub total: Kpis,
    /// Org-wide, per minute (key: minute start, epoch ms).
    pub by_minute: BTreeMap<i64, Kpis>,
    /// Per bot flow id, per minute.
    pub by_flow_minute: BTreeMap<String, BTreeMap<i64, Kpis>>,
    pub bot_sessions: u64,
    pub non_bot_sessions: u64,
    pub events: u64,
    pub events_by_topic: BTreeMap<String, u64>,
    /// Durations of every ended bot session, for percentile checks.
    pub durations_ms: Vec<u64>,
}

impl GroundTruth {
    fn add(&mut self, flow: &str, minute_ms: i64, f: impl Fn(&mut Kpis)) {
        f(&mut self.total);
        f(self.by_minute.entry(minute_ms).or_default());
        f(self
            .by_flow_minute
            .entry(flow.to_string())
            .or_default()
            .entry(minute_ms)
            .or_default());
    }
}

/// A generated conversation: what happened, its events, and what the API reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation {
    pub id: String,
    pub kind: SessionKind,
    pub is_bot: bool,
    pub detail: SimConversation,
    /// A bot session in another flow before the main one, if any.
    pub first_bot: Option<TruthSession>,
}

/// One bot session as the truth counts it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthSession {
    pub flow_id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub class: ExitClass,
    pub intent: Option<String>,
}

/// Generated traffic, sorted by delivery time.
#[derive(Debug, Clone, Serialize)]
pub struct Traffic {
    pub conversations: Vec<Conversation>,
    pub events: Vec<Event>,
    pub truth: GroundTruth,
}

impl Traffic {
    /// What the simulator's Platform API should know about these conversations.
    pub fn sim_conversations(&self) -> Vec<SimConversation> {
        self.conversations
            .iter()
            .map(|c| c.detail.clone())
            .collect()
    }
}

pub use va_analytics::minute_of;

fn uuid(rng: &mut ChaCha8Rng) -> String {
    let bytes: [u8; 16] = rng.random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn iso_seconds(ms: i64) -> String {
    let s = crate::sim::iso(ms);
    format!("{}Z", &s[..19])
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [(T, u32)]) -> &'a T {
    let total: u32 = items.iter().map(|(_, w)| *w).sum();
    let mut x = rng.random_range(0..total.max(1));
    for (item, w) in items {
        if x < *w {
            return item;
        }
        x -= w;
    }
    &items[items.len() - 1].0
}

/// Generates traffic. The same config always gives the same traffic.
pub fn generate(cfg: &TrafficConfig) -> Traffic {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut truth = GroundTruth::default();
    let mut conversations = Vec::new();
    let mut events = Vec::new();
    let start = minute_of(cfg.start_ms);
    let m = &cfg.mix;
    let kinds = [
        (SessionKind::Contained, m.contained),
        (SessionKind::Escalated, m.escalated),
        (SessionKind::Abandoned, m.abandoned),
        (SessionKind::Expired, m.expired),
        (SessionKind::RecognitionFailure, m.recognition_failure),
        (SessionKind::Error, m.error),
        (SessionKind::HandedBack, m.handed_back),
        (SessionKind::HandedBackToQueue, m.handed_back_to_queue),
        (SessionKind::ReturnToAgent, m.return_to_agent),
        (SessionKind::Unknown, m.unknown),
    ];
    let flows: Vec<(FlowSpec, u32)> = cfg.flows.iter().map(|f| (f.clone(), f.weight)).collect();
    for minute in 0..cfg.minutes as i64 {
        for _ in 0..cfg.sessions_per_minute {
            let t0 = start + minute * 60_000 + rng.random_range(0..60_000);
            let flow = pick(&mut rng, &flows).clone();
            let kind = *pick(&mut rng, &kinds);
            let conv = one_conversation(cfg, &mut rng, t0, &flow, kind, &mut events);
            let is_bot = conv.is_bot;
            if is_bot {
                truth.bot_sessions += 1;
                record_truth(&mut truth, &conv);
            } else {
                truth.non_bot_sessions += 1;
            }
            conversations.push(conv);
        }
    }
    events.sort_by(|a: &Event, b: &Event| {
        (a.at_ms, &a.envelope["id"].to_string()).cmp(&(b.at_ms, &b.envelope["id"].to_string()))
    });
    truth.events = events.len() as u64;
    for e in &events {
        *truth
            .events_by_topic
            .entry(e.detail_type.clone())
            .or_default() += 1;
    }
    Traffic {
        conversations,
        events,
        truth,
    }
}

fn record_session(truth: &mut GroundTruth, t: &TruthSession) {
    truth.add(&t.flow_id, minute_of(t.start_ms), |k| {
        k.sessions_started += 1
    });
    let duration = u64::try_from(t.end_ms - t.start_ms).unwrap_or(0);
    truth.add(&t.flow_id, minute_of(t.end_ms), |k| {
        k.sessions_ended += 1;
        match t.class {
            ExitClass::Contained => k.contained += 1,
            ExitClass::Escalated => k.escalated += 1,
            ExitClass::Abandoned => k.abandoned += 1,
            ExitClass::RecognitionFailure => k.recognition_failures += 1,
            ExitClass::Error => k.errors += 1,
            ExitClass::Other => k.other_exits += 1,
            ExitClass::Unknown => k.unknown_outcomes += 1,
        }
        k.duration_ms_sum += duration;
        k.duration_count += 1;
        if let Some(i) = &t.intent {
            *k.intents.entry(i.clone()).or_default() += 1;
        }
    });
    truth.durations_ms.push(duration);
    let mut m = minute_of(t.start_ms);
    while m <= minute_of(t.end_ms) {
        truth.add(&t.flow_id, m, |k| k.active += 1);
        m += 60_000;
    }
}

fn record_truth(truth: &mut GroundTruth, conv: &Conversation) {
    let d = &conv.detail;
    if let Some(first) = &conv.first_bot {
        truth.bot_sessions += 1;
        record_session(truth, first);
    }
    record_session(
        truth,
        &TruthSession {
            flow_id: d.flow_id.clone(),
            start_ms: d.flow_start_ms,
            end_ms: d.flow_end_ms,
            class: conv.kind.class(),
            intent: d
                .bot
                .as_ref()
                .and_then(|b| b.final_intent().map(str::to_string)),
        },
    );
    for (id, value, _, end) in &d.outcomes {
        truth.add(&d.flow_id, minute_of(*end), |k| {
            let o = k.outcomes.entry(id.clone()).or_default();
            if value == "SUCCESS" {
                o.success += 1;
            } else {
                o.failure += 1;
            }
        });
    }
}

struct Party<'a> {
    cfg: &'a TrafficConfig,
    conversation_id: &'a str,
    correlation_id: &'a str,
    session_id: &'a str,
    media: &'a Media,
}

struct Media {
    media_type: &'static str,
    provider: &'static str,
    ani: String,
    dnis: &'static str,
    message_type: Option<&'static str>,
}

impl Party<'_> {
    /// Fields every conversation event body carries.
    fn base(&self, event_time: i64, participant_id: &str) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("eventTime".into(), json!(event_time));
        m.insert("conversationId".into(), json!(self.conversation_id));
        m.insert("participantId".into(), json!(participant_id));
        m.insert("sessionId".into(), json!(self.session_id));
        m.insert("mediaType".into(), json!(self.media.media_type));
        m.insert("provider".into(), json!(self.media.provider));
        m.insert("direction".into(), json!("INBOUND"));
        m.insert("ani".into(), json!(self.media.ani));
        m.insert("dnis".into(), json!(self.media.dnis));
        m
    }

    fn message_type(&self, m: &mut serde_json::Map<String, Value>) {
        if let Some(t) = self.media.message_type {
            m.insert("messageType".into(), json!(t));
        }
    }

    fn envelope(
        &self,
        rng: &mut ChaCha8Rng,
        topic: &str,
        body: serde_json::Map<String, Value>,
    ) -> Event {
        let event_time = body
            .get("eventTime")
            .and_then(Value::as_i64)
            .unwrap_or_default();
        let at_ms = event_time + rng.random_range(100..1_500);
        let id = uuid(rng);
        let envelope = json!({
            "version": "0",
            "id": id,
            "detail-type": format!("v2.detail.events.conversation.{{id}}.{topic}"),
            "source": format!("aws.partner/genesys.com/cloud/{}/va-analytics", self.cfg.org_id),
            "account": self.cfg.account,
            "time": iso_seconds(at_ms),
            "region": self.cfg.region,
            "resources": [],
            "detail": {
                "topicName": format!("v2.detail.events.conversation.{}.{topic}", self.conversation_id),
                "version": "2",
                "eventBody": Value::Object(body),
                "metadata": {"CorrelationId": self.correlation_id},
                "timestamp": crate::sim::iso(at_ms),
            }
        });
        Event {
            at_ms,
            conversation_id: self.conversation_id.to_string(),
            detail_type: format!("v2.detail.events.conversation.{{id}}.{topic}"),
            envelope,
        }
    }
}

fn one_conversation(
    cfg: &TrafficConfig,
    rng: &mut ChaCha8Rng,
    t0: i64,
    flow: &FlowSpec,
    kind: SessionKind,
    events: &mut Vec<Event>,
) -> Conversation {
    let is_bot = BOT_FLOW_TYPES.contains(&flow.flow_type.as_str());
    let conversation_id = uuid(rng);
    let correlation_id = uuid(rng);
    let session_id = uuid(rng);
    let customer_pid = uuid(rng);
    let flow_pid = uuid(rng);
    let division_id = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".to_string();
    let media = if flow.flow_type == "DIGITALBOT" {
        Media {
            media_type: "MESSAGE",
            provider: "Genesys Messaging",
            ani: format!("messenger:{:04x}", rng.random::<u16>()),
            dnis: "web-messaging",
            // Upper case, as the platform sends it (the SDK model's enum).
            message_type: Some("WEBMESSAGING"),
        }
    } else {
        Media {
            media_type: "VOICE",
            provider: "Edge",
            ani: format!("tel:+1555{:07}", rng.random_range(0..10_000_000)),
            dnis: "tel:+18005550100",
            message_type: None,
        }
    };
    let p = Party {
        cfg,
        conversation_id: &conversation_id,
        correlation_id: &correlation_id,
        session_id: &session_id,
        media: &media,
    };
    // A non-bot flow (an IVR) is escalated or contained, never a bot outcome.
    let kind = if is_bot {
        kind
    } else if rng.random_bool(0.5) {
        SessionKind::Escalated
    } else {
        SessionKind::Contained
    };
    let duration_ms: i64 = match kind {
        SessionKind::Contained | SessionKind::HandedBack => rng.random_range(30_000..180_000),
        SessionKind::Escalated | SessionKind::HandedBackToQueue | SessionKind::ReturnToAgent => {
            rng.random_range(20_000..120_000)
        }
        SessionKind::Abandoned => rng.random_range(5_000..60_000),
        SessionKind::Expired => rng.random_range(300_000..900_000),
        SessionKind::RecognitionFailure => rng.random_range(30_000..120_000),
        SessionKind::Error | SessionKind::Unknown => rng.random_range(3_000..30_000),
    };
    let transfer_type = match kind {
        SessionKind::Escalated => Some(*pick(rng, &[("ACD", 70), ("USER", 15), ("GROUP", 15)])),
        SessionKind::ReturnToAgent => Some("RETURN_TO_AGENT"),
        _ => None,
    };
    let exit = *pick(
        rng,
        &[
            ("USER_EXIT", 50),
            ("FLOW_EXIT", 35),
            ("RECOGNITION_FAILURE_EXIT", 15),
        ],
    );
    let (exit_reason, disconnect_type, bot_result, bot_category) = match kind {
        SessionKind::Contained => (
            "FLOW_DISCONNECT",
            "PEER",
            "DisconnectRequestedByBot",
            "BotDisconnect",
        ),
        SessionKind::Escalated => ("TRANSFER", "TRANSFER", "TransferToACD", "Transfer"),
        SessionKind::ReturnToAgent => ("TRANSFER", "TRANSFER", "TransferToUser", "Transfer"),
        SessionKind::Abandoned => (
            "DISCONNECT",
            "PEER",
            "DisconnectRequestedByUser",
            "UserDisconnect",
        ),
        SessionKind::Expired => (
            "SESSION_EXPIRE_DISCONNECT",
            "SYSTEM",
            "DisconnectSessionExpired",
            "SessionExpired",
        ),
        SessionKind::RecognitionFailure => (
            "RECOGNITION_FAILURE_DISCONNECT",
            "CLIENT",
            "DisconnectRecognitionFailure",
            "RecognitionFailure",
        ),
        SessionKind::Error => (
            "FLOW_ERROR_DISCONNECT",
            "SYSTEM",
            "DisconnectError",
            "Error",
        ),
        SessionKind::HandedBack => ("USER_EXIT", "TRANSFER", "ExitRequestedByUser", "UserExit"),
        SessionKind::HandedBackToQueue => match exit {
            "FLOW_EXIT" => ("FLOW_EXIT", "TRANSFER", "ExitRequestedByBot", "BotExit"),
            "RECOGNITION_FAILURE_EXIT" => (
                "RECOGNITION_FAILURE_EXIT",
                "TRANSFER",
                "ExitRecognitionFailure",
                "RecognitionFailure",
            ),
            _ => ("USER_EXIT", "TRANSFER", "ExitRequestedByUser", "UserExit"),
        },
        SessionKind::Unknown => ("UNKNOWN", "SYSTEM", "Unknown", "Unknown"),
    };
    let flow_version = format!("{}.0", rng.random_range(1..20));

    let customer_start = t0;
    let mut b = p.base(customer_start, &customer_pid);
    p.message_type(&mut b);
    b.insert("divisionId".into(), json!(division_id));
    events.push(p.envelope(rng, "customer.start", b));

    // Some bot conversations pass through another bot flow first, which
    // hands back to the calling flow (FLOW_EXIT) before the main one starts.
    let other_bot = cfg
        .flows
        .iter()
        .find(|f| f.id != flow.id && BOT_FLOW_TYPES.contains(&f.flow_type.as_str()));
    let first = match other_bot {
        Some(other) if is_bot && rng.random_range(0..1_000) < cfg.mix.two_bots_per_mille => {
            let pid = uuid(rng);
            let start = t0 + rng.random_range(50..1_000);
            let end = start + rng.random_range(10_000..40_000);
            let version = format!("{}.0", rng.random_range(1..20));
            let fields = |b: &mut serde_json::Map<String, Value>| {
                b.insert("flowType".into(), json!(other.flow_type));
                b.insert("flowId".into(), json!(other.id));
                b.insert("divisionId".into(), json!(division_id));
                b.insert("flowVersion".into(), json!(version));
            };
            let mut b = p.base(start, &pid);
            p.message_type(&mut b);
            fields(&mut b);
            events.push(p.envelope(rng, "flow.start", b));
            let mut b = p.base(end, &pid);
            p.message_type(&mut b);
            fields(&mut b);
            b.insert("disconnectType".into(), json!("TRANSFER"));
            b.insert("connectedDurationMs".into(), json!(end - start));
            b.insert("exitReason".into(), json!("FLOW_EXIT"));
            events.push(p.envelope(rng, "flow.end", b));
            let intent = (!cfg.intents.is_empty())
                .then(|| cfg.intents[rng.random_range(0..cfg.intents.len())].clone());
            Some((other, pid, start, end, intent))
        }
        _ => None,
    };
    let flow_start = first.as_ref().map_or(t0, |f| f.3) + rng.random_range(50..1_000);
    let flow_end = flow_start + duration_ms;

    let flow_fields = |b: &mut serde_json::Map<String, Value>| {
        b.insert("flowType".into(), json!(flow.flow_type));
        b.insert("flowId".into(), json!(flow.id));
        b.insert("divisionId".into(), json!(division_id));
        b.insert("flowVersion".into(), json!(flow_version));
    };
    let mut b = p.base(flow_start, &flow_pid);
    p.message_type(&mut b);
    flow_fields(&mut b);
    events.push(p.envelope(rng, "flow.start", b));

    // Flow outcomes, each closed before the flow ends.
    let mut outcomes = Vec::new();
    if is_bot && !cfg.outcome_ids.is_empty() {
        let n = rng.random_range(0..=2usize.min(cfg.outcome_ids.len()));
        let mut ids = cfg.outcome_ids.clone();
        for i in 0..n {
            let idx = rng.random_range(i..ids.len());
            ids.swap(i, idx);
            let id = ids[i].clone();
            let success_p = if kind == SessionKind::Contained {
                0.8
            } else {
                0.3
            };
            let value = if rng.random_bool(success_p) {
                "SUCCESS"
            } else {
                "FAILURE"
            };
            let o_start = flow_start + rng.random_range(0..duration_ms / 2);
            let o_end = o_start + rng.random_range(1..(flow_end - o_start).max(2));
            let mut b = p.base(o_end, &flow_pid);
            flow_fields(&mut b);
            b.insert("flowOutcomeId".into(), json!(id));
            b.insert("flowOutcomeStartTime".into(), json!(o_start));
            b.insert("flowOutcomeEndTime".into(), json!(o_end));
            b.insert("flowOutcomeValue".into(), json!(value));
            b.insert(
                "flowMilestones".into(),
                json!([{"milestoneId": uuid(rng), "milestoneTime": o_start + (o_end - o_start) / 2}]),
            );
            events.push(p.envelope(rng, "flow.outcome", b));
            outcomes.push((id, value.to_string(), o_start, o_end));
        }
    }

    let mut b = p.base(flow_end, &flow_pid);
    p.message_type(&mut b);
    flow_fields(&mut b);
    b.insert("disconnectType".into(), json!(disconnect_type));
    b.insert("connectedDurationMs".into(), json!(duration_ms));
    b.insert("exitReason".into(), json!(exit_reason));
    if let Some(t) = transfer_type {
        b.insert("transferType".into(), json!(t));
    }
    events.push(p.envelope(rng, "flow.end", b));

    let mut end = flow_end + rng.random_range(50..500);
    let mut queue_id = None;
    let mut agent_pid = None;
    let queues = kind.queues(transfer_type);
    if queues || transfer_type.is_some() {
        let qid = uuid(rng);
        if queues {
            let acd_pid = uuid(rng);
            let acd_start = flow_end + rng.random_range(50..500);
            let acd_end = acd_start + rng.random_range(5_000..60_000);
            let mut b = p.base(acd_start, &acd_pid);
            b.insert("queueId".into(), json!(qid));
            b.insert("divisionId".into(), json!(division_id));
            events.push(p.envelope(rng, "acd.start", b));
            let mut b = p.base(acd_end, &acd_pid);
            b.insert("queueId".into(), json!(qid));
            b.insert("divisionId".into(), json!(division_id));
            b.insert("disconnectType".into(), json!("TRANSFER"));
            b.insert("connectedDurationMs".into(), json!(acd_end - acd_start));
            events.push(p.envelope(rng, "acd.end", b));
            end = acd_end;
        }
        let user_pid = uuid(rng);
        let user_id = uuid(rng);
        let user_start = end + rng.random_range(50..500);
        let user_end = user_start + rng.random_range(60_000..300_000);
        let mut b = p.base(user_start, &user_pid);
        b.insert("userId".into(), json!(user_id));
        b.insert("queueId".into(), json!(qid));
        b.insert("divisionId".into(), json!(division_id));
        events.push(p.envelope(rng, "user.start", b));
        let mut b = p.base(user_end, &user_pid);
        b.insert("userId".into(), json!(user_id));
        b.insert("queueId".into(), json!(qid));
        b.insert("divisionId".into(), json!(division_id));
        b.insert("disconnectType".into(), json!("PEER"));
        b.insert("connectedDurationMs".into(), json!(user_end - user_start));
        events.push(p.envelope(rng, "user.end", b));
        end = user_end + rng.random_range(10..200);
        queue_id = Some(qid);
        agent_pid = Some(user_pid);
    }
    let mut b = p.base(end, &customer_pid);
    p.message_type(&mut b);
    b.insert("divisionId".into(), json!(division_id));
    b.insert(
        "disconnectType".into(),
        json!(
            if matches!(kind, SessionKind::Abandoned | SessionKind::Expired) {
                "CLIENT"
            } else {
                "PEER"
            }
        ),
    );
    events.push(p.envelope(rng, "customer.end", b));

    let final_intent = match kind {
        SessionKind::Error | SessionKind::Unknown => None,
        SessionKind::Escalated | SessionKind::HandedBackToQueue | SessionKind::ReturnToAgent
            if rng.random_bool(0.5) =>
        {
            Some("TalkToAgent".to_string())
        }
        _ if cfg.intents.is_empty() => None,
        _ => Some(cfg.intents[rng.random_range(0..cfg.intents.len())].clone()),
    };
    let bot = is_bot.then(|| {
        bot_session(&BotSpec {
            cfg,
            kind,
            flow,
            conversation_id: &conversation_id,
            event_session_id: &session_id,
            start_ms: flow_start,
            end_ms: flow_end,
            bot_result,
            bot_category,
            final_intent,
        })
    });
    // The first bot counts as escalated when the conversation was queued after it.
    let (extra_bots, first_bot) = match &first {
        Some((other, pid, start, end, intent)) => {
            let session = bot_session(&BotSpec {
                cfg,
                kind: SessionKind::HandedBack,
                flow: other,
                conversation_id: &conversation_id,
                event_session_id: pid,
                start_ms: *start,
                end_ms: *end,
                bot_result: "ExitRequestedByBot",
                bot_category: "BotExit",
                final_intent: intent.clone(),
            });
            let truth = TruthSession {
                flow_id: other.id.clone(),
                start_ms: *start,
                end_ms: *end,
                class: if queues {
                    ExitClass::Escalated
                } else {
                    ExitClass::Contained
                },
                intent: session.final_intent().map(str::to_string),
            };
            (vec![session], Some(truth))
        }
        None => (Vec::new(), None),
    };
    let detail = SimConversation {
        id: conversation_id.clone(),
        division_id,
        start_ms: customer_start,
        end_ms: end,
        media_type: media.media_type.into(),
        customer_participant_id: customer_pid,
        flow_participant_id: flow_pid,
        flow_session_id: session_id,
        flow_id: flow.id.clone(),
        flow_name: flow.name.clone(),
        flow_type: flow.flow_type.clone(),
        flow_version,
        flow_start_ms: flow_start,
        flow_end_ms: flow_end,
        exit_reason: exit_reason.into(),
        transfer_type: transfer_type.map(String::from),
        outcomes,
        bot,
        extra_bots,
        queue_id,
        agent_participant_id: agent_pid,
    };
    Conversation {
        id: conversation_id,
        kind,
        is_bot,
        detail,
        first_bot,
    }
}

struct BotSpec<'a> {
    cfg: &'a TrafficConfig,
    kind: SessionKind,
    flow: &'a FlowSpec,
    conversation_id: &'a str,
    event_session_id: &'a str,
    start_ms: i64,
    end_ms: i64,
    bot_result: &'a str,
    bot_category: &'a str,
    final_intent: Option<String>,
}

/// A stable id for an intent name.
fn intent_id(name: &str) -> String {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in name.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    uuid::Builder::from_random_bytes(h.to_le_bytes())
        .into_uuid()
        .to_string()
}

/// The analytics view of a bot session: its `BotFlowSession` and turns, the
/// last turn carrying the final intent. Drawn from an RNG seeded by the
/// session, so the main stream (and with it every other generated value and
/// the ground truth) is what it was before turns existed.
fn bot_session(s: &BotSpec<'_>) -> BotSession {
    let seed = s
        .event_session_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let id = uuid(&mut rng);
    let n = rng.random_range(1..=4usize);
    let span = (s.end_ms - s.start_ms).max(n as i64 * 2);
    let created: Vec<i64> = (0..n)
        .map(|k| s.start_ms + span * k as i64 / n as i64 + 1)
        .collect();
    let intent = |name: String, rng: &mut ChaCha8Rng| TurnIntent {
        id: intent_id(&name),
        name,
        confidence: f64::from(rng.random_range(60..100u32)) / 100.0,
    };
    let turns = (0..n)
        .map(|k| {
            let last = k + 1 == n;
            let t_intent = if last {
                s.final_intent.clone().map(|i| intent(i, &mut rng))
            } else if s.cfg.intents.is_empty() {
                None
            } else {
                let i = s.cfg.intents[rng.random_range(0..s.cfg.intents.len())].clone();
                Some(intent(i, &mut rng))
            };
            let result = match (last, s.kind) {
                (true, SessionKind::RecognitionFailure) => "NoMatchCollection",
                (true, SessionKind::Error) => "Error",
                (true, SessionKind::Abandoned) => "NoInputCollection",
                _ if t_intent.is_none() => "NoMatchCollection",
                _ => "SuccessCollection",
            };
            BotTurn {
                key: uuid(&mut rng),
                user_input: format!("utterance {}", k + 1),
                bot_prompts: vec![if k == 0 {
                    "How can I help you today?".to_string()
                } else {
                    "Is there anything else?".to_string()
                }],
                action_id: format!("ask-intent-{}", k + 1),
                action_name: "Ask for intent".into(),
                action_number: k as i64 + 1,
                action_type: "AskForNLUIntentAction".into(),
                intent: t_intent,
                ask_action_result: result.into(),
                date_created_ms: created[k],
                date_completed_ms: created.get(k + 1).map_or(s.end_ms, |next| next - 1),
            }
        })
        .collect();
    let voice = s.flow.flow_type != "DIGITALBOT";
    let modes = |m: &[&str]| m.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    BotSession {
        id,
        flow_id: s.flow.id.clone(),
        conversation_id: s.conversation_id.to_string(),
        channel: if voice { "Call" } else { "Messaging" }.into(),
        user_agent: if voice { "Phone" } else { "GenesysWebWidget" }.into(),
        input_modes: if voice {
            modes(&["Voice", "Dtmf"])
        } else {
            modes(&["Text"])
        },
        output_modes: if voice {
            modes(&["Voice"])
        } else {
            modes(&["Text"])
        },
        language: "en-us".into(),
        end_language: "en-us".into(),
        bot_result: s.bot_result.into(),
        bot_result_category: s.bot_category.into(),
        date_created_ms: s.start_ms,
        date_completed_ms: s.end_ms,
        end_type: if s.bot_result.starts_with("Disconnect") {
            "Disconnect"
        } else {
            "Exit"
        }
        .into(),
        end_reason: s.bot_result.into(),
        turns,
    }
}
