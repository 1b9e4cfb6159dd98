//! HTTP routes. One listener serves both the login host and the API host.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tower::ServiceExt;

use super::state::{Auth, FaultAction, Shared, TokenThrottle};
use super::{FaultSide, Faults, Policies, RevokeReason, SimConversation};
use super::{iso, parse_iso};

type Sim = Arc<Shared>;

/// Lets a handler close its own connection without answering.
#[derive(Clone)]
struct ConnectionKill(Arc<Notify>);

pub(super) async fn serve(listener: tokio::net::TcpListener, shared: Sim) {
    let app = router(shared);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let kill = Arc::new(Notify::new());
            let k = kill.clone();
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectionKill(k.clone()));
                    let app = app.clone();
                    async move { app.oneshot(req.map(Body::new)).await }
                },
            );
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
            }
        });
    }
}

fn router(shared: Sim) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/api/v2/{*rest}", any(api))
        .route("/sim/counters", get(ctl_counters))
        .route("/sim/revoke-all", post(ctl_revoke_all))
        .route("/sim/policies", get(ctl_get_policies).put(ctl_put_policies))
        .route("/sim/faults/{side}", put(ctl_put_faults))
        .route("/sim/clock", get(ctl_get_clock).post(ctl_post_clock))
        .route("/sim/conversations", post(ctl_post_conversations))
        .with_state(shared)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        json!({"error": error, "description": description, "error_description": description}),
    )
}

fn platform_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        json!({
            "message": message,
            "code": code,
            "status": status.as_u16(),
            "contextId": uuid::Uuid::new_v4().to_string(),
            "details": [],
            "errors": []
        }),
    )
}

fn with_retry_after(mut r: Response, secs: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Applies latency and the one fault this request draws. `Some` means answer with it.
async fn apply_faults(
    sim: &Sim,
    side: FaultSide,
    kill: Option<&ConnectionKill>,
) -> Option<Response> {
    let (latency_ms, action) = sim.take_fault(side);
    if latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    }
    match action {
        FaultAction::None => None,
        FaultAction::Drop => {
            if let Some(k) = kill {
                k.0.notify_one();
            }
            std::future::pending::<()>().await;
            None
        }
        FaultAction::Error(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            Some(platform_error(
                status,
                "service.unavailable",
                "Injected server error.",
            ))
        }
        // The token endpoint throttles in its own shape.
        FaultAction::Storm(retry) if side == FaultSide::Token => {
            Some(token_throttled(sim.lock().policies.token_throttle, retry))
        }
        FaultAction::Storm(retry) => Some(with_retry_after(
            platform_error(
                StatusCode::TOO_MANY_REQUESTS,
                "too.many.requests",
                "Rate limit exceeded the maximum (injected storm).",
            ),
            retry,
        )),
    }
}

/// A token request over the limit. The default is the platform's answer as
/// Genesys' Terraform provider matches it (MyPureCloud/
/// terraform-provider-genesyscloud PR #1004: `400 - invalid_request (rate
/// limit exceeded; ...)`); DESIGN 3.2.
fn token_throttled(shape: TokenThrottle, retry_after_s: u64) -> Response {
    match shape {
        TokenThrottle::InvalidRequest400 => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "rate limit exceeded; try again later",
        ),
        TokenThrottle::TooManyRequests429 => with_retry_after(
            platform_error(
                StatusCode::TOO_MANY_REQUESTS,
                "too.many.requests",
                "Token request rate limit exceeded.",
            ),
            retry_after_s,
        ),
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let enc = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(enc.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (id, secret) = s.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

async fn token(State(sim): State<Sim>, req: Request) -> Response {
    let _in_flight = sim.enter_token_request();
    let kill = req.extensions().get::<ConnectionKill>().cloned();
    if let Some(r) = apply_faults(&sim, FaultSide::Token, kill.as_ref()).await {
        return r;
    }
    let (parts, body) = req.into_parts();
    let Some((client_id, secret)) = basic_credentials(&parts.headers) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication is required (HTTP Basic).",
        );
    };
    let known = sim.lock().clients.get(&client_id).cloned();
    if known.as_deref() != Some(secret.as_str()) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client credentials.",
        );
    }
    let form_ct = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_ct {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded.",
        );
    }
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Unreadable body.",
        );
    };
    let form: Vec<(String, String)> = url_decode_form(&bytes);
    let grant = form
        .iter()
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.as_str());
    match grant {
        Some("client_credentials") => {}
        Some("refresh_token") => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "The refresh token has been revoked or expired",
            );
        }
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant type.",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing grant_type.",
            );
        }
    }
    if let Some(retry) = sim.token_rate_check(&client_id) {
        return token_throttled(sim.lock().policies.token_throttle, retry);
    }
    let (value, expires_in) = sim.issue_token(&client_id);
    json_response(
        StatusCode::OK,
        json!({"access_token": value, "token_type": "bearer", "expires_in": expires_in}),
    )
}

fn url_decode_form(bytes: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let s = s.replace('+', " ");
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && i + 2 < b.len()
                && let Ok(v) = u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or(""), 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(bytes)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .map(|s| s.trim().to_string())
}

async fn api(
    State(sim): State<Sim>,
    Path(rest): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    req: Request,
) -> Response {
    let kill = req.extensions().get::<ConnectionKill>().cloned();
    if let Some(r) = apply_faults(&sim, FaultSide::Api, kill.as_ref()).await {
        return r;
    }
    let method = req.method().clone();
    let token = bearer(req.headers());
    match sim.authenticate(token.as_deref()) {
        Auth::Denied(reason) => {
            return platform_error(
                StatusCode::UNAUTHORIZED,
                "bad.credentials",
                reason.message(),
            );
        }
        Auth::Ok => {}
    }
    let token = token.unwrap_or_default();
    let rate = sim.api_rate(&token);
    if let Some(info) = &rate
        && let Some(retry) = info.retry_after_s
    {
        let r = platform_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too.many.requests",
            &format!(
                "Rate limit exceeded the maximum. [{}] requests for [60] seconds",
                info.allowed
            ),
        );
        return with_rate_headers(with_retry_after(r, retry), info);
    }
    let resp = route_api(&sim, &method, &rest, &query, &token);
    match &rate {
        Some(info) => with_rate_headers(resp, info),
        None => resp,
    }
}

fn with_rate_headers(mut r: Response, info: &super::state::RateInfo) -> Response {
    let h = r.headers_mut();
    for (name, value) in [
        ("inin-ratelimit-allowed", info.allowed as u64),
        ("inin-ratelimit-count", info.count as u64),
        ("inin-ratelimit-reset", info.reset_s),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            h.insert(name, v);
        }
    }
    r
}

fn route_api(
    sim: &Sim,
    method: &Method,
    rest: &str,
    query: &[(String, String)],
    token: &str,
) -> Response {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match (method.clone(), segs.as_slice()) {
        (Method::HEAD, ["tokens", "me"]) => StatusCode::OK.into_response(),
        (Method::GET, ["tokens", "me"]) => {
            let st = sim.lock();
            let org = st.org_id.clone();
            let client = st
                .tokens
                .get(token)
                .map(|t| t.client_id.clone())
                .unwrap_or_default();
            json_response(
                StatusCode::OK,
                json!({
                    "organization": {"id": org, "name": ORG_NAME},
                    "homeOrganization": {"id": org, "name": ORG_NAME},
                    "authorizedScope": [],
                    "OAuthClient": {"id": client, "name": "simulated client", "organization": {"id": org, "name": ORG_NAME}}
                }),
            )
        }
        (Method::DELETE, ["tokens", "me"]) => {
            sim.revoke(token, RevokeReason::Explicit);
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::GET, ["analytics", "conversations", id, "details"]) => {
            match sim.lock().conversations.get(*id) {
                Some(c) => json_response(StatusCode::OK, conversation_details(c)),
                None => not_found(id),
            }
        }
        (Method::GET, ["analytics", "botflows", flow_id, "sessions"]) => {
            answer(botflow_sessions(sim, flow_id, query))
        }
        (
            Method::GET,
            [
                "analytics",
                "botflows",
                flow_id,
                "divisions",
                "reportingturns",
            ],
        ) => answer(reporting_turns(sim, flow_id, query)),
        // `Flow` (SDK model): the fields read here and a few around them.
        (Method::GET, ["flows", id]) => {
            let st = sim.lock();
            if st.policies.flows_forbidden {
                return platform_error(
                    StatusCode::FORBIDDEN,
                    "missing.permissions",
                    "You are missing the following permission(s): architect:flow:view",
                );
            }
            match st.conversations.values().find(|c| c.flow_id == *id) {
                Some(c) => json_response(
                    StatusCode::OK,
                    json!({
                        "id": c.flow_id,
                        "name": c.flow_name,
                        "type": c.flow_type,
                        "active": true,
                        "system": false,
                        "deleted": false,
                        "selfUri": format!("/api/v2/flows/{}", c.flow_id),
                    }),
                ),
                None => platform_error(
                    StatusCode::NOT_FOUND,
                    "not.found",
                    &format!("Unable to find flow with id {id}."),
                ),
            }
        }
        (Method::GET, ["conversations", id]) => match sim.lock().conversations.get(*id) {
            Some(c) => json_response(StatusCode::OK, conversation(c)),
            None => not_found(id),
        },
        _ => platform_error(
            StatusCode::NOT_FOUND,
            "not.found",
            "The requested resource was not found.",
        ),
    }
}

fn not_found(id: &str) -> Response {
    platform_error(
        StatusCode::NOT_FOUND,
        "not.found",
        &format!("Unable to find conversation with id {id}."),
    )
}

fn conversation_details(c: &SimConversation) -> Value {
    let mut participants = vec![
        json!({
            "participantId": c.customer_participant_id,
            "purpose": "customer",
            "sessions": [{"sessionId": c.flow_session_id, "mediaType": c.media_type.to_lowercase(), "direction": "inbound"}]
        }),
        json!({
            "participantId": c.flow_participant_id,
            "purpose": if c.bot.is_some() { "bot" } else { "ivr" },
            "sessions": [{
                "sessionId": c.flow_session_id,
                "mediaType": c.media_type.to_lowercase(),
                "flow": {
                    "flowId": c.flow_id,
                    "flowName": c.flow_name,
                    "flowType": c.flow_type,
                    "flowVersion": c.flow_version,
                    "exitReason": c.exit_reason,
                    "transferType": c.transfer_type,
                    "endingLanguage": c.bot.as_ref().map(|b| b.language.clone()),
                    "outcomes": c.outcomes.iter().map(|(id, v, s, e)| json!({
                        "flowOutcomeId": id,
                        "flowOutcomeValue": v,
                        "flowOutcomeStartTimestamp": iso(*s),
                        "flowOutcomeEndTimestamp": iso(*e),
                    })).collect::<Vec<_>>(),
                }
            }]
        }),
    ];
    if let Some(agent) = &c.agent_participant_id {
        participants.push(json!({
            "participantId": agent,
            "purpose": "agent",
            "sessions": [{"mediaType": c.media_type.to_lowercase(), "segments": [{"queueId": c.queue_id}]}]
        }));
    }
    json!({
        "conversationId": c.id,
        "conversationStart": iso(c.start_ms),
        "conversationEnd": iso(c.end_ms),
        "originatingDirection": "inbound",
        "divisionIds": [c.division_id],
        "participants": participants,
    })
}

fn conversation(c: &SimConversation) -> Value {
    let mut participants = vec![
        json!({"id": c.customer_participant_id, "purpose": "customer", "startTime": iso(c.start_ms), "endTime": iso(c.end_ms)}),
        json!({"id": c.flow_participant_id, "purpose": "workflow", "startTime": iso(c.flow_start_ms), "endTime": iso(c.flow_end_ms)}),
    ];
    if let Some(agent) = &c.agent_participant_id {
        participants.push(json!({"id": agent, "purpose": "agent", "queueId": c.queue_id}));
    }
    json!({
        "id": c.id,
        "startTime": iso(c.start_ms),
        "endTime": iso(c.end_ms),
        "participants": participants,
        "divisions": [{"division": {"id": c.division_id}}],
        "selfUri": format!("/api/v2/conversations/{}", c.id),
    })
}

/// The organisation's name in `TokenInfo` (`NamedEntity` {id, name}).
const ORG_NAME: &str = "Simulated Org";

/// A 400 with this message (ErrorBody code `bad.request`).
struct BadRequest(&'static str);

fn answer(r: Result<Value, BadRequest>) -> Response {
    match r {
        Ok(v) => json_response(StatusCode::OK, v),
        Err(BadRequest(message)) => platform_error(StatusCode::BAD_REQUEST, "bad.request", message),
    }
}

fn bad_request(message: &'static str) -> BadRequest {
    BadRequest(message)
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query parameters the listing endpoints share.
struct Listing<'a> {
    query: &'a [(String, String)],
    page_size: usize,
    after: Option<&'a str>,
    interval: Option<(i64, i64)>,
}

impl<'a> Listing<'a> {
    /// `pageSize` 1..=250 (default 50), `interval` ISO `start/end`; else a 400 ErrorBody.
    fn parse(query: &'a [(String, String)]) -> Result<Self, BadRequest> {
        let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
        let page_size = match get("pageSize") {
            None => 50,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=250).contains(&n) => n,
                _ => return Err(bad_request("pageSize must be between 1 and 250")),
            },
        };
        let interval = match get("interval") {
            None => None,
            Some(v) => match parse_interval(v) {
                Some((a, b)) if a <= b => Some((a, b)),
                _ => {
                    return Err(bad_request(
                        "interval must be an ISO-8601 interval start/end",
                    ));
                }
            },
        };
        Ok(Self {
            query,
            page_size,
            after: get("after"),
            interval,
        })
    }

    fn get(&self, k: &str) -> Option<&'a str> {
        self.query
            .iter()
            .find(|(q, _)| q == k)
            .map(|(_, v)| v.as_str())
    }

    /// Comma-separated values of a list parameter (repeated keys allowed).
    fn list(&self, k: &str) -> Option<Vec<&'a str>> {
        let v: Vec<&str> = self
            .query
            .iter()
            .filter(|(q, _)| q == k)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        (!v.is_empty()).then_some(v)
    }

    fn uri(&self, path: &str, after: Option<&str>) -> String {
        let mut parts: Vec<String> = self
            .query
            .iter()
            .filter(|(k, _)| k != "after")
            .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
            .collect();
        if let Some(a) = after {
            parts.push(format!("after={}", pct(a)));
        }
        if parts.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", parts.join("&"))
        }
    }

    /// One page of `items` (keys for the cursor) in the envelope
    /// `{entities, nextUri, selfUri}`: `after` is the key of the last item of
    /// the previous page; `nextUri` keeps every query parameter and is absent
    /// on the last page.
    fn page(&self, path: &str, items: Vec<(String, Value)>) -> Result<Value, BadRequest> {
        let start = match self.after {
            None => 0,
            Some(a) => match items.iter().position(|(k, _)| k == a) {
                Some(i) => i + 1,
                None => return Err(bad_request("The after cursor is not valid for this query.")),
            },
        };
        let end = (start + self.page_size).min(items.len());
        let page = &items[start.min(end)..end];
        let mut body = json!({
            "entities": page.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
            "selfUri": self.uri(path, self.after),
        });
        if end < items.len()
            && let Some((last, _)) = page.last()
        {
            body["nextUri"] = json!(self.uri(path, Some(last)));
        }
        Ok(body)
    }
}

fn conversation_ref(id: &str) -> Value {
    json!({"id": id, "selfUri": format!("/api/v2/conversations/{id}")})
}

/// Bot sessions of one flow whose ingestion is done (`dateCompleted` +
/// `analytics_lag_s` has passed), newest first by `dateCompleted`.
fn visible_sessions<'a>(
    st: &'a super::state::State,
    flow_id: &str,
    now: i64,
) -> Vec<&'a super::BotSession> {
    let lag_ms = (st.policies.analytics_lag_s as i64).saturating_mul(1000);
    let mut v: Vec<&super::BotSession> = st
        .conversations
        .values()
        .flat_map(|c| c.bot.iter().chain(c.extra_bots.iter()))
        .filter(|b| b.flow_id == flow_id && now >= b.date_completed_ms.saturating_add(lag_ms))
        .collect();
    v.sort_by(|a, b| (b.date_completed_ms, &b.id).cmp(&(a.date_completed_ms, &a.id)));
    v
}

/// `BotFlowSession` (SDK model): exactly id, flow {id}, conversation {id,
/// selfUri}, channel, language, endLanguage, botResult, botResultCategory,
/// dateCreated, dateCompleted. Enum fields are never null.
fn session_json(b: &super::BotSession, invented_intents: bool) -> Value {
    let mut v = json!({
        "id": b.id,
        "flow": {"id": b.flow_id},
        "conversation": conversation_ref(&b.conversation_id),
        "channel": {
            "name": b.channel,
            "inputModes": b.input_modes,
            "outputModes": b.output_modes,
            "userAgent": {"name": b.user_agent},
        },
        "language": b.language,
        "endLanguage": b.end_language,
        "botResult": b.bot_result,
        "botResultCategory": b.bot_result_category,
        "dateCreated": iso(b.date_created_ms),
        "dateCompleted": iso(b.date_completed_ms),
    });
    if invented_intents {
        v["intents"] = json!(
            b.final_intent()
                .iter()
                .map(|i| json!({"name": i}))
                .collect::<Vec<_>>()
        );
    }
    v
}

/// `GET /api/v2/analytics/botflows/{botFlowId}/sessions`: `interval` filters
/// on `dateCompleted` (start inclusive, end exclusive), newest first,
/// `after` = id of the last session already seen, `botResultCategories` and
/// `endLanguage` filter.
fn botflow_sessions(
    sim: &Sim,
    flow_id: &str,
    query: &[(String, String)],
) -> Result<Value, BadRequest> {
    let q = Listing::parse(query)?;
    let categories = q.list("botResultCategories");
    let end_language = q.get("endLanguage");
    let now = sim.clock.now_ms();
    let st = sim.lock();
    let invented = st.policies.invented_session_intents;
    let items: Vec<(String, Value)> = visible_sessions(&st, flow_id, now)
        .into_iter()
        .filter(|b| {
            q.interval
                .is_none_or(|(a, e)| b.date_completed_ms >= a && b.date_completed_ms < e)
        })
        .filter(|b| {
            categories
                .as_ref()
                .is_none_or(|c| c.contains(&b.bot_result_category.as_str()))
        })
        .filter(|b| end_language.is_none_or(|l| l.eq_ignore_ascii_case(&b.end_language)))
        .map(|b| (b.id.clone(), session_json(b, invented)))
        .collect();
    q.page(
        &format!("/api/v2/analytics/botflows/{}/sessions", pct(flow_id)),
        items,
    )
}

/// `GET /api/v2/analytics/botflows/{botFlowId}/divisions/reportingturns`:
/// `ReportingTurn`s of ingested sessions, by `sessionId`, `actionId`,
/// `language`, `askActionResults`; chronological within a session, sessions
/// newest first. `interval` filters on the turn's `dateCreated` (ASSUMPTION:
/// the field it filters on is not documented). `sessionEndDetails` only on
/// a session's last turn.
fn reporting_turns(
    sim: &Sim,
    flow_id: &str,
    query: &[(String, String)],
) -> Result<Value, BadRequest> {
    let q = Listing::parse(query)?;
    let session_id = q.get("sessionId");
    let action_id = q.get("actionId");
    let language = q.get("language");
    let results = q.list("askActionResults");
    let now = sim.clock.now_ms();
    let st = sim.lock();
    let mut items = Vec::new();
    for b in visible_sessions(&st, flow_id, now) {
        if session_id.is_some_and(|s| s != b.id)
            || language.is_some_and(|l| !l.eq_ignore_ascii_case(&b.language))
        {
            continue;
        }
        let last = b.turns.len().saturating_sub(1);
        for (i, t) in b.turns.iter().enumerate() {
            if action_id.is_some_and(|a| a != t.action_id)
                || results
                    .as_ref()
                    .is_some_and(|r| !r.contains(&t.ask_action_result.as_str()))
                || q.interval
                    .is_some_and(|(a, e)| t.date_created_ms < a || t.date_created_ms >= e)
            {
                continue;
            }
            let mut v = json!({
                "userInput": t.user_input,
                "botPrompts": t.bot_prompts,
                "sessionId": b.id,
                "conversation": conversation_ref(&b.conversation_id),
                "askAction": {
                    "actionId": t.action_id,
                    "actionName": t.action_name,
                    "actionNumber": t.action_number,
                    "actionType": t.action_type,
                },
                "dateCreated": iso(t.date_created_ms),
                "dateCompleted": iso(t.date_completed_ms),
                "askActionResult": t.ask_action_result,
            });
            if let Some(intent) = &t.intent {
                v["intent"] = json!({
                    "name": intent.name,
                    "id": intent.id,
                    "confidence": intent.confidence,
                    "slots": [],
                });
            }
            if i == last {
                v["sessionEndDetails"] = json!({"type": b.end_type, "reason": b.end_reason});
            }
            items.push((t.key.clone(), v));
        }
    }
    q.page(
        &format!(
            "/api/v2/analytics/botflows/{}/divisions/reportingturns",
            pct(flow_id)
        ),
        items,
    )
}

fn parse_interval(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.split_once('/')?;
    Some((parse_iso(a)?, parse_iso(b)?))
}

async fn ctl_counters(State(sim): State<Sim>) -> impl IntoResponse {
    axum::Json(sim.counters())
}

async fn ctl_revoke_all(State(sim): State<Sim>) -> impl IntoResponse {
    axum::Json(json!({"revoked": sim.revoke_all(RevokeReason::Admin)}))
}

async fn ctl_get_policies(State(sim): State<Sim>) -> impl IntoResponse {
    axum::Json(sim.lock().policies.clone())
}

async fn ctl_put_policies(
    State(sim): State<Sim>,
    axum::Json(p): axum::Json<Policies>,
) -> impl IntoResponse {
    sim.lock().policies = p;
    StatusCode::NO_CONTENT
}

async fn ctl_put_faults(
    State(sim): State<Sim>,
    Path(side): Path<String>,
    axum::Json(f): axum::Json<Faults>,
) -> Response {
    let side = match side.as_str() {
        "token" => FaultSide::Token,
        "api" => FaultSide::Api,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    *sim.lock().faults_mut(side) = f;
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct ClockChange {
    advance_ms: Option<u64>,
    speed: Option<f64>,
}

async fn ctl_get_clock(State(sim): State<Sim>) -> impl IntoResponse {
    axum::Json(json!({"now_ms": sim.clock.now_ms(), "speed": sim.clock.speed()}))
}

async fn ctl_post_clock(
    State(sim): State<Sim>,
    axum::Json(c): axum::Json<ClockChange>,
) -> impl IntoResponse {
    if let Some(speed) = c.speed {
        sim.clock.set_speed(speed);
    }
    if let Some(ms) = c.advance_ms {
        sim.clock.advance(Duration::from_millis(ms));
    }
    axum::Json(json!({"now_ms": sim.clock.now_ms(), "speed": sim.clock.speed()}))
}

async fn ctl_post_conversations(
    State(sim): State<Sim>,
    axum::Json(convs): axum::Json<Vec<SimConversation>>,
) -> impl IntoResponse {
    let mut st = sim.lock();
    let n = convs.len();
    for c in convs {
        st.conversations.insert(c.id.clone(), c);
    }
    axum::Json(json!({"registered": n}))
}
