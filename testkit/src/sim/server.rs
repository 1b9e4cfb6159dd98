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

use super::state::{Auth, FaultAction, Shared};
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
        json!({"error": error, "error_description": description}),
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
        return with_retry_after(
            platform_error(
                StatusCode::TOO_MANY_REQUESTS,
                "too.many.requests",
                "Token request rate limit exceeded.",
            ),
            retry,
        );
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
                    "organization": {"id": org, "selfUri": format!("/api/v2/organizations/{org}")},
                    "homeOrganization": {"id": org},
                    "authorizedScope": [],
                    "OAuthClient": {"id": client, "name": "simulated client", "organization": {"id": org}}
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
            json_response(StatusCode::OK, botflow_sessions(sim, flow_id, query))
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

/// `interval` ("start/end", ISO-8601) filters by session creation; `pageSize`
/// and `after` page through results, newest last.
fn botflow_sessions(sim: &Sim, flow_id: &str, query: &[(String, String)]) -> Value {
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    let page_size = get("pageSize")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(25)
        .clamp(1, 500);
    let after = get("after")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let interval = get("interval").and_then(parse_interval);
    let st = sim.lock();
    let mut sessions: Vec<&SimConversation> = st
        .conversations
        .values()
        .filter(|c| c.flow_id == flow_id && c.bot.is_some())
        .filter(|c| interval.is_none_or(|(a, b)| c.flow_start_ms >= a && c.flow_start_ms < b))
        .collect();
    sessions.sort_by(|a, b| (a.flow_start_ms, &a.id).cmp(&(b.flow_start_ms, &b.id)));
    let total = sessions.len();
    let entities: Vec<Value> = sessions
        .iter()
        .skip(after)
        .take(page_size)
        .filter_map(|c| {
            let b = c.bot.as_ref()?;
            Some(json!({
                "id": c.flow_session_id,
                "flow": {"id": c.flow_id, "name": c.flow_name},
                "channel": {"name": "Messaging", "inputModes": ["Text"], "outputModes": ["Text"]},
                "language": b.language,
                "endLanguage": b.language,
                "botResult": b.bot_result,
                "botResultCategory": b.bot_result_category,
                "dateCreated": iso(c.flow_start_ms),
                "conversation": {"id": c.id, "selfUri": format!("/api/v2/conversations/{}", c.id)},
                "intents": b.final_intent.iter().map(|i| json!({"name": i})).collect::<Vec<_>>(),
            }))
        })
        .collect();
    let next = after + entities.len();
    let mut body = json!({"entities": entities, "pageSize": page_size});
    if next < total {
        body["nextUri"] = json!(format!(
            "/api/v2/analytics/botflows/{flow_id}/sessions?pageSize={page_size}&after={next}"
        ));
    }
    body
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
