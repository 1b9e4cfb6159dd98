//! The simulator's state and the token and rate-limit rules it enforces.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::{SimClock, SimConfig};

/// Token policies. Defaults follow docs/DESIGN.md; `live_token_cap` is an
/// assumption and is off unless set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Policies {
    /// `expires_in` of new tokens (DESIGN: 300..=172800 s per OAuth client, default 24 h).
    pub token_lifetime_s: u64,
    /// Org idle-token timeout: a token unused this long stops working (DESIGN: 15 min under HIPAA).
    pub idle_timeout_s: Option<u64>,
    /// Token-endpoint requests allowed per client per minute; past it, the
    /// answer `token_throttle` chooses.
    pub token_rate_limit_per_min: Option<u32>,
    /// How a throttled token request is answered (DESIGN 3.2): HTTP 400
    /// `invalid_request` "rate limit exceeded" by default, as the platform does.
    pub token_throttle: TokenThrottle,
    /// ASSUMPTION (not in Genesys docs): at most this many live tokens per
    /// client, each new token revoking the oldest. `None` turns it off.
    pub live_token_cap: Option<usize>,
    /// Platform API requests per minute (DESIGN: 300), counted per
    /// `api_rate_scope`. `None` turns it off.
    pub api_rate_limit_per_min: Option<u32>,
    /// What the 300 a minute is counted against (DESIGN 3.4: disputed).
    pub api_rate_scope: RateScope,
    /// ASSUMPTION (DESIGN 3.4 names 3000 requests per minute per organization
    /// app; how the platform counts it is not documented): Platform API
    /// requests per minute across every token of the org, past it 429 +
    /// `Retry-After`. `None` (the default) turns it off.
    pub app_rate_limit_per_min: Option<u32>,
    /// Analytics ingestion lag: a bot session (and its reporting turns)
    /// becomes visible this many seconds after its `dateCompleted`. Real
    /// platform: seconds to minutes; set it to test lag. Default 0.
    pub analytics_lag_s: u64,
    /// Reproduces the old simulator's invented field: bot flow sessions carry
    /// an `intents` array, which the SDK model `BotFlowSession` does not
    /// have. Only for the conformance test's negative case. Default off.
    pub invented_session_intents: bool,
    /// ASSUMPTION (the status is the platform's for a missing permission; the
    /// body's code is not documented): the OAuth client lacks
    /// `architect:flow:view`, so `GET /api/v2/flows/{flowId}` answers 403.
    /// Default off.
    pub flows_forbidden: bool,
}

impl Default for Policies {
    fn default() -> Self {
        Self {
            token_lifetime_s: 86_400,
            idle_timeout_s: None,
            token_rate_limit_per_min: None,
            token_throttle: TokenThrottle::default(),
            live_token_cap: None,
            api_rate_limit_per_min: Some(300),
            api_rate_scope: RateScope::default(),
            app_rate_limit_per_min: None,
            analytics_lag_s: 0,
            invented_session_intents: false,
            flows_forbidden: false,
        }
    }
}

/// The answer to a token request over the token endpoint's limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TokenThrottle {
    /// HTTP 400, `{"error": "invalid_request", "error_description": "rate
    /// limit exceeded; ..."}`, no `Retry-After`: what Genesys' own Terraform
    /// provider matches before retrying a login (DESIGN 3.2).
    #[default]
    #[value(name = "400")]
    #[serde(rename = "400")]
    InvalidRequest400,
    /// SWITCH, for the case Genesys changes it: HTTP 429
    /// `too.many.requests` with `Retry-After`, the Platform API's shape.
    #[value(name = "429")]
    #[serde(rename = "429")]
    TooManyRequests429,
}

/// What the Platform API's per-minute budget is counted against. Genesys
/// staff and documentation disagree (DESIGN 3.4); both are switches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RateScope {
    /// Each access token has its own 300 a minute (a Genesys engineer on
    /// the developer forum): a pool of N tokens carries N times the load.
    #[default]
    PerToken,
    /// Every token of one OAuth client shares one budget (other forum
    /// answers): a pool buys nothing.
    PerClient,
}

/// Which half of the platform a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultSide {
    /// `POST /oauth/token` on the login host.
    Token,
    /// Everything under `/api/v2`.
    Api,
}

/// Run-time fault switches for one side. Counts are "the next N requests";
/// `u32::MAX` keeps a fault on until it is switched off.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Faults {
    /// Real (not simulated) delay added before answering, in milliseconds.
    pub latency_ms: u64,
    /// The next N requests get a 5xx.
    pub errors_5xx: u32,
    /// Status used for `errors_5xx` (503 when 0).
    pub status_5xx: u16,
    /// The next N requests get 429 with `Retry-After: storm_retry_after_s`.
    pub storm_429: u32,
    pub storm_retry_after_s: u64,
    /// The next N requests have their connection closed without a response.
    pub drop_connections: u32,
}

/// Why a token stopped working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// `DELETE /api/v2/tokens/me`.
    Explicit,
    /// An admin revoked every token (control call).
    Admin,
    /// Superseded under the live-token cap (assumption).
    Cap,
    /// Unused for longer than the idle timeout.
    Idle,
}

/// Why a Platform API call got a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unauthorized {
    Missing,
    Unknown,
    Expired,
    Revoked,
    Superseded,
    Idle,
}

impl Unauthorized {
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "No authentication bearer token specified in authorization header.",
            Self::Unknown => "Invalid login credentials: unknown access token.",
            Self::Expired => "Invalid login credentials: the access token has expired.",
            Self::Revoked => "Invalid login credentials: the access token has been revoked.",
            Self::Superseded => {
                "Invalid login credentials: the access token was revoked by a newer token (live-token cap)."
            }
            Self::Idle => "Invalid login credentials: the access token timed out after being idle.",
        }
    }
}

/// Counters readable at run time.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Counters {
    /// Every request that reached `POST /oauth/token`.
    pub token_requests: u64,
    pub tokens_issued: u64,
    pub token_requests_in_flight: u64,
    pub max_token_requests_in_flight: u64,
    pub live_tokens: u64,
    pub unauthorized: BTreeMap<Unauthorized, u64>,
    pub unauthorized_total: u64,
    /// 429s from the per-token API limit.
    pub api_rate_limited: u64,
    /// 429s from the org-wide app limit (assumption, off by default).
    pub app_rate_limited: u64,
    /// 429s from the token-endpoint limit.
    pub token_rate_limited: u64,
    /// Faults served, by side.
    pub injected_5xx: u64,
    pub injected_429: u64,
    pub dropped_connections: u64,
    pub api_calls: u64,
    /// API calls that passed authentication, by token serial (never the value).
    pub api_calls_per_token: BTreeMap<u64, u64>,
}

/// A conversation the Platform API knows, as the traffic generator made it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimConversation {
    pub id: String,
    pub division_id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub media_type: String,
    pub customer_participant_id: String,
    pub flow_participant_id: String,
    pub flow_session_id: String,
    pub flow_id: String,
    pub flow_name: String,
    pub flow_type: String,
    pub flow_version: String,
    pub flow_start_ms: i64,
    pub flow_end_ms: i64,
    pub exit_reason: String,
    pub transfer_type: Option<String>,
    /// (outcome id, SUCCESS|FAILURE, start ms, end ms)
    pub outcomes: Vec<(String, String, i64, i64)>,
    /// Present for bot flows.
    pub bot: Option<BotSession>,
    /// Bot sessions in other flows of the same conversation (before the main one).
    #[serde(default)]
    pub extra_bots: Vec<BotSession>,
    /// The queue and agent after an escalation.
    pub queue_id: Option<String>,
    pub agent_participant_id: Option<String>,
}

/// A bot flow session as the analytics API reports it: one
/// `BotFlowSession` from `GET /api/v2/analytics/botflows/{flowId}/sessions`
/// and its `ReportingTurn`s from `.../divisions/reportingturns`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BotSession {
    /// `BotFlowSession.id`: the analytics session id, which is not the
    /// `sessionId` of the flow events.
    pub id: String,
    /// `flow.id`.
    pub flow_id: String,
    /// `conversation.id`.
    pub conversation_id: String,
    /// `channel.name`: `Chat`, `Call` or `Messaging`.
    pub channel: String,
    /// `channel.userAgent.name`, e.g. `GenesysWebWidget`, `Phone`.
    pub user_agent: String,
    /// `channel.inputModes` / `channel.outputModes`.
    pub input_modes: Vec<String>,
    pub output_modes: Vec<String>,
    /// `language` and `endLanguage`.
    pub language: String,
    pub end_language: String,
    /// `botResult` and `botResultCategory`, consistent with how the session ended.
    pub bot_result: String,
    pub bot_result_category: String,
    /// `dateCreated` / `dateCompleted`, epoch ms. The sessions `interval`
    /// filters on `dateCompleted`.
    pub date_created_ms: i64,
    pub date_completed_ms: i64,
    /// The last turn's `sessionEndDetails`: `type` (`Disconnect` or `Exit`) and `reason`.
    pub end_type: String,
    pub end_reason: String,
    /// Chronological.
    pub turns: Vec<BotTurn>,
}

impl BotSession {
    /// The session's final intent: the intent name of its last turn (latest `dateCreated`).
    pub fn final_intent(&self) -> Option<&str> {
        self.turns
            .iter()
            .max_by_key(|t| t.date_created_ms)
            .and_then(|t| t.intent.as_ref())
            .map(|i| i.name.as_str())
    }
}

/// One `ReportingTurn`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BotTurn {
    /// The simulator's paging key (the model has no turn id; the cursor is opaque).
    pub key: String,
    pub user_input: String,
    pub bot_prompts: Vec<String>,
    /// `askAction`: `actionId`, `actionName`, `actionNumber`, `actionType`.
    pub action_id: String,
    pub action_name: String,
    pub action_number: i64,
    pub action_type: String,
    /// `intent`; absent when nothing was recognised.
    pub intent: Option<TurnIntent>,
    /// `askActionResult`, e.g. `SuccessCollection`, `NoMatchCollection`.
    pub ask_action_result: String,
    pub date_created_ms: i64,
    pub date_completed_ms: i64,
}

/// `ReportingTurn.intent`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TurnIntent {
    pub name: String,
    pub id: String,
    pub confidence: f64,
}

#[derive(Debug)]
pub(super) struct TokenRecord {
    pub serial: u64,
    pub client_id: String,
    pub expires_ms: i64,
    pub last_used_ms: i64,
    pub revoked: Option<RevokeReason>,
    pub window_start_ms: i64,
    pub window_count: u32,
}

#[derive(Debug)]
pub(super) struct State {
    pub policies: Policies,
    pub token_faults: Faults,
    pub api_faults: Faults,
    pub clients: HashMap<String, String>,
    pub tokens: HashMap<String, TokenRecord>,
    pub conversations: HashMap<String, SimConversation>,
    pub counters: Counters,
    pub org_id: String,
    /// Token-endpoint rate windows per client: (window start, count).
    pub token_windows: HashMap<String, (i64, u32)>,
    /// The org-wide app rate window: (window start, count).
    pub app_window: (i64, u32),
    /// API rate windows per OAuth client under [`RateScope::PerClient`].
    pub client_api_windows: HashMap<String, (i64, u32)>,
    next_serial: u64,
}

impl State {
    pub(super) fn faults_mut(&mut self, side: FaultSide) -> &mut Faults {
        match side {
            FaultSide::Token => &mut self.token_faults,
            FaultSide::Api => &mut self.api_faults,
        }
    }
}

pub(super) struct Shared {
    pub clock: Arc<SimClock>,
    state: Mutex<State>,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

/// What the fault switches decided for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum FaultAction {
    None,
    Drop,
    Error(u16),
    Storm(u64),
}

/// Outcome of checking a bearer token.
pub(super) enum Auth {
    Ok,
    Denied(Unauthorized),
}

/// Outcome of the per-token rate limit: the three `inin-ratelimit-*` values,
/// and `Retry-After` when over.
pub(super) struct RateInfo {
    pub allowed: u32,
    pub count: u32,
    pub reset_s: u64,
    pub retry_after_s: Option<u64>,
}

const MINUTE_MS: i64 = 60_000;

impl Shared {
    pub(super) fn new(config: &SimConfig) -> Self {
        Self {
            clock: config.clock.clone(),
            state: Mutex::new(State {
                policies: config.policies.clone(),
                token_faults: Faults::default(),
                api_faults: Faults::default(),
                clients: config.clients.iter().cloned().collect(),
                tokens: HashMap::new(),
                conversations: HashMap::new(),
                counters: Counters::default(),
                org_id: config.org_id.clone(),
                token_windows: HashMap::new(),
                app_window: (i64::MIN, 0),
                client_api_windows: HashMap::new(),
                next_serial: 1,
            }),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn counters(&self) -> Counters {
        let now = self.clock.now_ms();
        let st = self.lock();
        let mut c = st.counters.clone();
        c.live_tokens = st
            .tokens
            .values()
            .filter(|t| liveness(t, now, &st.policies).is_none())
            .count() as u64;
        c.token_requests_in_flight = self.in_flight.load(Ordering::SeqCst);
        c.max_token_requests_in_flight = self.max_in_flight.load(Ordering::SeqCst);
        c
    }

    /// Counts a token request in flight until the guard drops.
    pub(super) fn enter_token_request(self: &Arc<Self>) -> InFlight {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        self.lock().counters.token_requests += 1;
        InFlight(self.clone())
    }

    /// Consumes one fault for this request, if any is switched on.
    pub(super) fn take_fault(&self, side: FaultSide) -> (u64, FaultAction) {
        let mut st = self.lock();
        let f = st.faults_mut(side);
        let latency = f.latency_ms;
        let action = if f.drop_connections > 0 {
            f.drop_connections = f
                .drop_connections
                .saturating_sub(u32::from(f.drop_connections != u32::MAX));
            FaultAction::Drop
        } else if f.errors_5xx > 0 {
            f.errors_5xx = f
                .errors_5xx
                .saturating_sub(u32::from(f.errors_5xx != u32::MAX));
            FaultAction::Error(if f.status_5xx == 0 { 503 } else { f.status_5xx })
        } else if f.storm_429 > 0 {
            f.storm_429 = f
                .storm_429
                .saturating_sub(u32::from(f.storm_429 != u32::MAX));
            FaultAction::Storm(f.storm_retry_after_s)
        } else {
            FaultAction::None
        };
        match action {
            FaultAction::Drop => st.counters.dropped_connections += 1,
            FaultAction::Error(_) => st.counters.injected_5xx += 1,
            FaultAction::Storm(_) => st.counters.injected_429 += 1,
            FaultAction::None => {}
        }
        (latency, action)
    }

    /// The token-endpoint rate limit for one client; `Some(retry_after_s)` when over.
    pub(super) fn token_rate_check(&self, client_id: &str) -> Option<u64> {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        let limit = st.policies.token_rate_limit_per_min?;
        let w = st
            .token_windows
            .entry(client_id.to_string())
            .or_insert((now, 0));
        if now - w.0 >= MINUTE_MS {
            *w = (now, 0);
        }
        if w.1 >= limit {
            let retry = ((w.0 + MINUTE_MS - now).max(0) as u64)
                .div_ceil(1000)
                .max(1);
            st.counters.token_rate_limited += 1;
            return Some(retry);
        }
        w.1 += 1;
        None
    }

    /// Issues a new opaque token; returns (value, expires_in seconds).
    pub(super) fn issue_token(&self, client_id: &str) -> (String, u64) {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        let lifetime = st.policies.token_lifetime_s;
        if let Some(cap) = st.policies.live_token_cap {
            let policies = st.policies.clone();
            let mut live: Vec<(u64, String)> = st
                .tokens
                .iter()
                .filter(|(_, t)| t.client_id == client_id && liveness(t, now, &policies).is_none())
                .map(|(k, t)| (t.serial, k.clone()))
                .collect();
            live.sort();
            let excess = (live.len() + 1).saturating_sub(cap.max(1));
            for (_, key) in live.into_iter().take(excess) {
                if let Some(t) = st.tokens.get_mut(&key) {
                    t.revoked = Some(RevokeReason::Cap);
                }
            }
        }
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let value: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let serial = st.next_serial;
        st.next_serial += 1;
        st.tokens.insert(
            value.clone(),
            TokenRecord {
                serial,
                client_id: client_id.to_string(),
                expires_ms: now + (lifetime as i64) * 1000,
                last_used_ms: now,
                revoked: None,
                window_start_ms: now,
                window_count: 0,
            },
        );
        st.counters.tokens_issued += 1;
        (value, lifetime)
    }

    /// Checks a bearer token and marks it used.
    pub(super) fn authenticate(&self, bearer: Option<&str>) -> Auth {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        st.counters.api_calls += 1;
        let policies = st.policies.clone();
        let verdict = match bearer.and_then(|b| st.tokens.get_mut(b).map(|t| (b, t))) {
            None if bearer.is_none() => Err(Unauthorized::Missing),
            None => Err(Unauthorized::Unknown),
            Some((_, t)) => match liveness(t, now, &policies) {
                Some(reason) => {
                    if reason == Unauthorized::Idle {
                        t.revoked = Some(RevokeReason::Idle);
                    }
                    Err(reason)
                }
                None => {
                    t.last_used_ms = now;
                    Ok(t.serial)
                }
            },
        };
        match verdict {
            Ok(serial) => {
                *st.counters.api_calls_per_token.entry(serial).or_default() += 1;
                Auth::Ok
            }
            Err(reason) => {
                *st.counters.unauthorized.entry(reason).or_default() += 1;
                st.counters.unauthorized_total += 1;
                Auth::Denied(reason)
            }
        }
    }

    /// Counts one API request against the org-wide app budget (when that
    /// assumption is on) and the token's per-minute budget. Rejected requests
    /// count too, so a 429's `inin-ratelimit-count` exceeds
    /// `inin-ratelimit-allowed`.
    pub(super) fn api_rate(&self, bearer: &str) -> Option<RateInfo> {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        if let Some(app) = st.policies.app_rate_limit_per_min {
            let w = &mut st.app_window;
            if now.saturating_sub(w.0) >= MINUTE_MS {
                *w = (now, 0);
            }
            w.1 = w.1.saturating_add(1);
            let (start, count) = *w;
            if count > app {
                let reset_s = ((start + MINUTE_MS - now).max(0) as u64)
                    .div_ceil(1000)
                    .max(1);
                st.counters.app_rate_limited += 1;
                return Some(RateInfo {
                    allowed: app,
                    count,
                    reset_s,
                    retry_after_s: Some(reset_s),
                });
            }
        }
        let limit = st.policies.api_rate_limit_per_min?;
        let scope = st.policies.api_rate_scope;
        let st = &mut *st;
        let t = st.tokens.get_mut(bearer)?;
        let (start, count) = match scope {
            RateScope::PerToken => (&mut t.window_start_ms, &mut t.window_count),
            RateScope::PerClient => {
                let w = st
                    .client_api_windows
                    .entry(t.client_id.clone())
                    .or_insert((now, 0));
                (&mut w.0, &mut w.1)
            }
        };
        if now - *start >= MINUTE_MS {
            *start = now;
            *count = 0;
        }
        let reset_ms = (*start + MINUTE_MS - now).max(0) as u64;
        let reset_s = reset_ms.div_ceil(1000).max(1);
        *count = count.saturating_add(1);
        let count = *count;
        if count > limit {
            st.counters.api_rate_limited += 1;
            return Some(RateInfo {
                allowed: limit,
                count,
                reset_s,
                retry_after_s: Some(reset_s),
            });
        }
        Some(RateInfo {
            allowed: limit,
            count,
            reset_s,
            retry_after_s: None,
        })
    }

    pub(super) fn revoke(&self, bearer: &str, reason: RevokeReason) -> bool {
        let mut st = self.lock();
        match st.tokens.get_mut(bearer) {
            Some(t) => {
                t.revoked = Some(reason);
                true
            }
            None => false,
        }
    }

    pub(super) fn revoke_all(&self, reason: RevokeReason) -> usize {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        let policies = st.policies.clone();
        let mut n = 0;
        for t in st.tokens.values_mut() {
            if liveness(t, now, &policies).is_none() {
                t.revoked = Some(reason);
                n += 1;
            }
        }
        n
    }
}

/// `None` when the token works now, else why it does not.
fn liveness(t: &TokenRecord, now: i64, p: &Policies) -> Option<Unauthorized> {
    match t.revoked {
        Some(RevokeReason::Cap) => return Some(Unauthorized::Superseded),
        Some(RevokeReason::Idle) => return Some(Unauthorized::Idle),
        Some(_) => return Some(Unauthorized::Revoked),
        None => {}
    }
    if now >= t.expires_ms {
        return Some(Unauthorized::Expired);
    }
    if let Some(idle) = p.idle_timeout_s
        && now - t.last_used_ms > (idle as i64) * 1000
    {
        return Some(Unauthorized::Idle);
    }
    None
}

pub(super) struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
