//! What the dashboard shows: the aggregates of a time range and the token
//! health, as one JSON document. `dashboard-api` serves it in AWS and the
//! local stack serves it locally, with the same page.

pub mod access;
pub mod auth;
pub mod live;
mod range;
mod snapshot;

pub use range::{MAX_RANGE_MS, bucket_for, preset_range, range, rebucket};
pub(crate) use snapshot::View;
pub use snapshot::snapshot;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use auth::{AuthConfig, Verifier};

use lambda_support::{Clock, ConfigErrors, Env};
use token_store::tenants::TenantRegistry;
use token_store::{StoreError, TokenStore};

use crate::kpi::Scope;
use crate::store::{AnalyticsError, AnalyticsStore};

/// The dashboard page: one HTML file, inline script and SVG charts, no build
/// step, no network beyond its own origin.
pub const PAGE: &str = include_str!("index.html");

/// The snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The aggregates could not be read.
    #[error(transparent)]
    Analytics(#[from] AnalyticsError),
    /// The token items could not be read.
    #[error(transparent)]
    Tokens(#[from] StoreError),
}

/// One slot's token health. Never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct TokenHealth {
    pub slot: usize,
    pub version: u64,
    pub has_token: bool,
    pub expires_in_s: Option<i64>,
    pub last_refresh_ms: Option<i64>,
    pub lease_held: bool,
    pub failures: u32,
    /// `credentials_rejected`, `rate_limited` or `unavailable`; never the
    /// error text, which may name the secret or a role.
    pub last_error_code: Option<String>,
}

/// One point of the time series: a bucket's counters (sums; `active` is
/// the bucket's peak).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// Bucket start, epoch ms (UTC minute, hour or day).
    pub start_ms: i64,
    /// Counters.
    pub counters: BTreeMap<String, i64>,
}

/// One flow of the per-flow table: its sums over the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowRow {
    /// The flow id.
    pub flow_id: String,
    /// Its name, as the sweeper resolved it; the id when unknown.
    pub name: String,
    /// Bot sessions started.
    pub sessions: i64,
    /// Bot sessions ended.
    pub ended: i64,
    /// Ended contained, escalated, abandoned.
    pub contained: i64,
    #[allow(missing_docs)]
    pub escalated: i64,
    #[allow(missing_docs)]
    pub abandoned: i64,
    /// Recognition failures.
    pub recognition_failures: i64,
    /// Shares of ended sessions (0..1).
    pub containment_rate: Option<f64>,
    #[allow(missing_docs)]
    pub escalation_rate: Option<f64>,
    #[allow(missing_docs)]
    pub abandonment_rate: Option<f64>,
    /// Median duration (histogram bucket bound), seconds.
    pub median_duration_s: Option<u64>,
}

/// Everything the page shows for one scope and range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Range start, epoch ms.
    pub from_ms: i64,
    /// Range end, epoch ms.
    pub to_ms: i64,
    /// The org shown (`""`: the one org of a single-org deployment).
    pub org: String,
    /// What is shown: all flows, or one flow by name.
    pub scope: String,
    /// The flow shown, if one.
    pub flow_id: Option<String>,
    /// `minute`, `hour` or `day` ([`bucket_for`]).
    pub bucket: &'static str,
    /// The bucket's length, ms.
    pub bucket_ms: i64,
    /// Counters per bucket.
    pub series: Vec<Point>,
    /// Every flow with sessions (or ends) in the range, most sessions first.
    pub flows: Vec<FlowRow>,
    /// What reading the range cost (queries, items, read units).
    pub reads: crate::store::ReadStats,
    /// Sums over the range.
    pub totals: BTreeMap<String, i64>,
    /// Contained, escalated, abandoned shares of ended sessions (0..1).
    pub containment_rate: Option<f64>,
    #[allow(missing_docs)]
    pub escalation_rate: Option<f64>,
    #[allow(missing_docs)]
    pub abandonment_rate: Option<f64>,
    /// Median duration (histogram bucket bound), seconds.
    pub duration_p50_s: Option<u64>,
    /// 90th percentile, seconds.
    pub duration_p90_s: Option<u64>,
    /// 99th percentile, seconds.
    pub duration_p99_s: Option<u64>,
    /// Mean duration, seconds.
    pub average_duration_s: Option<f64>,
    /// Final intents, most frequent first.
    pub top_intents: Vec<(String, i64)>,
    /// Per outcome id: (success, failure).
    pub outcomes: BTreeMap<String, (i64, i64)>,
    /// One per token slot.
    pub tokens: Vec<TokenHealth>,
    /// When this was read, epoch ms.
    pub generated_at_ms: i64,
    /// A live view's settled part, for the page to send back with its next
    /// refreshes ([`live`]); only in answers to `live=1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settled: Option<live::Settled>,
}

/// An HTTP answer, independent of the server that sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `content-type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Reply {
    fn json(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: "application/json",
            body,
        }
    }

    /// `{"error": code, "message": message}`: a stable code and a fixed
    /// sentence, never an underlying error's text.
    fn error(status: u16, code: &str, message: &str) -> Self {
        Self::json(
            status,
            serde_json::json!({ "error": code, "message": message }).to_string(),
        )
    }
}

/// The dashboard's two routes, shared by `dashboard-api` and the local stack:
/// `GET /` (the page) and `GET /api/dashboard?from=&to=|minutes=&flow=` (JSON).
pub struct DashboardApi {
    /// The aggregates.
    pub store: AnalyticsStore,
    /// The token items (health attributes only).
    pub tokens: TokenStore,
    /// Token slots to show.
    pub pool_size: usize,
    /// Now, for default ranges and token expiry.
    pub clock: Arc<dyn Clock>,
    /// Checks the viewer's sign-in on every data request.
    pub auth: Arc<Verifier>,
    /// Many orgs: the tenant registry. Each request reads one org, the one
    /// the viewer's groups grant ([`access::org_for`]).
    pub tenants: Option<TenantRegistry>,
    /// Many orgs in AWS: read each org with credentials limited to it.
    /// `None`: with `store`'s own (local runs, tests of the routes).
    pub readers: Option<Arc<access::TaggedReaders>>,
}

/// How far back the page looks when the request names no range.
pub const DEFAULT_MINUTES: i64 = 180;

impl DashboardApi {
    /// Answers one request. `authorization` is the request's
    /// `Authorization` header: the page and `/api/sign-in` are public, the
    /// data needs a signed-in viewer.
    pub async fn reply(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        authorization: Option<&str>,
    ) -> Reply {
        self.reply_with_body(method, path, query, authorization, None)
            .await
    }

    /// [`Self::reply`] to a request with a body: `POST /api/dashboard`
    /// carries a live view's settled part ([`live`]).
    pub async fn reply_with_body(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        authorization: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let post_data = method == "POST" && path.trim_end_matches('/') == "/api/dashboard";
        if method != "GET" && method != "HEAD" && !post_data {
            return Reply::error(405, "method_not_allowed", "only GET, and POST of live data");
        }
        match path.trim_end_matches('/') {
            "" | "/index.html" => Reply {
                status: 200,
                content_type: "text/html; charset=utf-8",
                body: PAGE.to_string(),
            },
            "/api/sign-in" => Reply::json(
                200,
                serde_json::json!({
                    "sign_in": self.auth.sign_in(),
                    "version": lambda_support::VERSION,
                })
                .to_string(),
            ),
            "/api/dashboard" | "/api/orgs" => match self.auth.verify(authorization).await {
                Ok(viewer) if path.trim_end_matches('/') == "/api/orgs" => self.orgs(&viewer).await,
                Ok(viewer) => {
                    tracing::info!(viewer = %viewer.username, live = post_data, "dashboard read");
                    let settled = if post_data {
                        match live_body(body) {
                            Ok(s) => Some(s),
                            Err(refused) => return refused,
                        }
                    } else {
                        None
                    };
                    self.data(query, &viewer, settled).await
                }
                Err(e) => {
                    let status = if e == auth::AuthError::KeysUnavailable {
                        503
                    } else {
                        401
                    };
                    Reply::error(status, e.code(), "sign in to see the dashboard")
                }
            },
            _ => Reply::error(404, "not_found", "no such page"),
        }
    }

    /// The orgs the viewer may pick: `{"multi_org", "orgs": [{"org_id", "name"}]}`.
    async fn orgs(&self, viewer: &auth::Viewer) -> Reply {
        let Some(registry) = &self.tenants else {
            return Reply::json(
                200,
                serde_json::json!({"multi_org": false, "orgs": []}).to_string(),
            );
        };
        if access::grants_all(&viewer.groups) {
            return match registry.list().await {
                Ok(all) => {
                    let orgs: Vec<_> = all
                        .iter()
                        .map(|t| serde_json::json!({"org_id": t.org_id, "name": t.display_name}))
                        .collect();
                    Reply::json(
                        200,
                        serde_json::json!({"multi_org": true, "orgs": orgs}).to_string(),
                    )
                }
                Err(e) => {
                    tracing::error!(error = %e, "tenant registry read failed");
                    Reply::error(502, "store_unavailable", "the store could not be read")
                }
            };
        }
        let mut orgs = Vec::new();
        for org in access::orgs_of(&viewer.groups) {
            match registry.get(&org).await {
                Ok(Some(t)) => {
                    orgs.push(serde_json::json!({"org_id": org, "name": t.display_name}))
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "tenant registry read failed");
                    return Reply::error(502, "store_unavailable", "the store could not be read");
                }
            }
        }
        Reply::json(
            200,
            serde_json::json!({"multi_org": true, "orgs": orgs}).to_string(),
        )
    }

    /// The org the request reads and its views of the two tables; a refusal
    /// when the viewer's groups do not grant it.
    async fn org_views(
        &self,
        viewer: &auth::Viewer,
        requested: Option<&str>,
    ) -> Result<(String, AnalyticsStore, TokenStore, usize), Reply> {
        let Some(registry) = &self.tenants else {
            return Ok((
                String::new(),
                self.store.clone(),
                self.tokens.clone(),
                self.pool_size,
            ));
        };
        let org = access::org_for(&viewer.groups, requested).map_err(|r| {
            let (status, code, message) = r.answer();
            tracing::warn!(viewer = %viewer.username, code, "org refused");
            Reply::error(status, code, message)
        })?;
        match registry.get(&org).await {
            Ok(Some(t)) => Ok((
                org.clone(),
                match &self.readers {
                    Some(r) => r.store(&org).await,
                    None => self.store.for_org(&org),
                },
                self.tokens.for_identity(&t.token_identity()),
                t.pool_size.clamp(1, 32),
            )),
            Ok(None) => Err(Reply::error(
                404,
                "org_unknown",
                "this org is not registered",
            )),
            Err(e) => {
                tracing::error!(error = %e, "tenant registry read failed");
                Err(Reply::error(
                    502,
                    "store_unavailable",
                    "the store could not be read",
                ))
            }
        }
    }

    async fn data(
        &self,
        query: &[(String, String)],
        viewer: &auth::Viewer,
        settled: Option<live::Settled>,
    ) -> Reply {
        let get = |k: &str| param(query, k);
        if let Err(e) = self.store.check_layout().await {
            tracing::error!(error = %e, "dashboard read refused");
            return Reply::error(503, "layout_unknown", &e.to_string());
        }
        let (org, store, tokens, pool_size) = match self.org_views(viewer, get("org")).await {
            Ok(v) => v,
            Err(refused) => return refused,
        };
        let now = self.clock.now_ms();
        let (from, to) = match requested_range(query, now) {
            Ok(r) => r,
            Err(refused) => return refused,
        };
        let scope = match requested_scope(query) {
            Ok(s) => s,
            Err(refused) => return refused,
        };
        let view = View {
            store: &store,
            tokens: &tokens,
            pool_size,
            scope: &scope,
        };
        let answer = match (settled, get("live")) {
            (Some(settled), _) => match settled.check(&org, &scope, from, to) {
                Ok(()) => live::refresh(&view, &settled, from, to, now).await,
                Err(stale) => return Reply::error(409, "settled_stale", &stale.to_string()),
            },
            (None, Some("1")) => live::snapshot_with_settled(&view, &org, from, to, now).await,
            (None, _) => snapshot(&store, &tokens, pool_size, &scope, from, to, now).await,
        }
        .map(|s| Snapshot { org, ..s });
        snapshot_reply(answer)
    }
}

/// A query parameter's value.
fn param<'a>(query: &'a [(String, String)], k: &str) -> Option<&'a str> {
    query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str())
}

/// The range asked for: a preset (`range`), or `from`/`to`/`minutes`.
fn requested_range(query: &[(String, String)], now: i64) -> Result<(i64, i64), Reply> {
    let number = |k: &str| -> Result<Option<i64>, ()> {
        param(query, k)
            .map(|v| v.parse::<i64>().map_err(|_| ()))
            .transpose()
    };
    let (Ok(from), Ok(to), Ok(minutes)) = (number("from"), number("to"), number("minutes")) else {
        return Err(Reply::error(
            400,
            "range_invalid",
            "`from`, `to` and `minutes` must be whole numbers",
        ));
    };
    let chosen = match param(query, "range") {
        Some(preset) if !preset.is_empty() => preset_range(preset, now),
        _ => range(from, to, minutes, now),
    };
    chosen.map_err(|message| Reply::error(400, "range_invalid", message))
}

/// The scope asked for: the org, or one flow (`flow`, a flow id).
fn requested_scope(query: &[(String, String)]) -> Result<Scope, Reply> {
    match param(query, "flow") {
        None | Some("") => Ok(Scope::Org),
        Some(f) if va_events::is_uuid(f) => Ok(Scope::Flow(f.to_ascii_lowercase())),
        Some(_) => Err(Reply::error(
            400,
            "flow_invalid",
            "`flow` must be a flow id",
        )),
    }
}

/// A snapshot as the answer's JSON, or why there is none.
fn snapshot_reply(answer: Result<Snapshot, DashboardError>) -> Reply {
    match answer {
        Ok(s) => match serde_json::to_string(&s) {
            Ok(body) => Reply::json(200, body),
            Err(e) => {
                tracing::error!(error = %e, "dashboard answer could not be written");
                Reply::error(500, "internal", "the answer could not be written")
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "dashboard query failed");
            Reply::error(502, "store_unavailable", "the store could not be read")
        }
    }
}

/// The settled part a live refresh carries, or the answer refusing it.
fn live_body(body: Option<&str>) -> Result<live::Settled, Reply> {
    let body = body.unwrap_or_default();
    if body.len() > live::MAX_SETTLED_BYTES {
        return Err(Reply::error(
            413,
            "settled_too_large",
            "the settled part is too large",
        ));
    }
    serde_json::from_str(body).map_err(|_| {
        Reply::error(
            400,
            "settled_invalid",
            "the body must be a settled part from `live=1`",
        )
    })
}

/// What `dashboard-api` needs: it reads aggregates and token items, never the secret.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// The aggregates' table.
    pub analytics_table: String,
    /// The token items' table.
    pub token_table: String,
    /// Names the token items; the secret itself is not read.
    pub secret_id: String,
    /// Token slots to show.
    pub pool_size: usize,
    /// The sign-in.
    pub auth: AuthConfig,
    /// Many orgs: the tenant registry's table (`TENANTS_TABLE`).
    pub tenants_table: Option<String>,
    /// Many orgs: the role whose tagged sessions read one org each
    /// ([`access::ORG_READER_ROLE_ARN`]).
    pub org_reader_role_arn: Option<String>,
}

/// Variable: the Cognito user pool's issuer URL.
pub const AUTH_ISSUER: &str = "AUTH_ISSUER";
/// Variable: the app client the page signs in with.
pub const AUTH_CLIENT_ID: &str = "AUTH_CLIENT_ID";
/// Variable (tests and the local stack): where the pool's keys are, when not
/// under the issuer.
pub const AUTH_JWKS_URL: &str = "AUTH_JWKS_URL";
/// Variable (tests and the local stack): where the page signs in, when not
/// the issuer's origin.
pub const AUTH_SIGN_IN_ENDPOINT: &str = "AUTH_SIGN_IN_ENDPOINT";

impl DashboardConfig {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let mut env = Env::new(get);
        let analytics_table =
            env.required(crate::ANALYTICS_TABLE, "the DynamoDB table of aggregates");
        let token_table = env.required("TOKEN_TABLE", "the DynamoDB table of token items");
        let tenants_table = env.optional(token_store::tenants::TENANTS_TABLE);
        let org_reader_role_arn = env.optional(access::ORG_READER_ROLE_ARN);
        // Many orgs: each org's token items are found through its registry item.
        let secret_id = if tenants_table.is_none() {
            env.required(
                "GENESYS_SECRET_ID",
                "the secret's name or ARN (only to find the token items)",
            )
        } else {
            String::new()
        };
        let pool_size = env.number("TOKEN_POOL_SIZE", 1, 1..=32) as usize;
        let issuer = env.required(AUTH_ISSUER, "the Cognito user pool's issuer URL");
        let client_id = env.required(AUTH_CLIENT_ID, "the Cognito app client id");
        let mut auth = AuthConfig::cognito(&issuer, &client_id);
        if !issuer.is_empty() && !issuer.starts_with("https://") {
            env.invalid(
                AUTH_ISSUER,
                issuer.clone(),
                "expected an https:// URL".into(),
            );
        }
        for (var, slot) in [
            (AUTH_JWKS_URL, &mut auth.jwks_url),
            (AUTH_SIGN_IN_ENDPOINT, &mut auth.sign_in_endpoint),
        ] {
            if let Some(url) = env.optional(var) {
                if lambda_support::is_https_or_allowed_loopback(&url, true) {
                    *slot = url;
                } else {
                    env.invalid(
                        var,
                        url,
                        "expected https:// (or http:// to loopback)".into(),
                    );
                }
            }
        }
        env.finish(Self {
            analytics_table,
            token_table,
            secret_id,
            pool_size,
            auth,
            tenants_table,
            org_reader_role_arn,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_in_must_be_https_or_loopback() {
        let base = |k: &str| match k {
            "ANALYTICS_TABLE" => Some("a".to_string()),
            "TOKEN_TABLE" => Some("t".to_string()),
            "GENESYS_SECRET_ID" => Some("s".to_string()),
            AUTH_ISSUER => {
                Some("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x".to_string())
            }
            AUTH_CLIENT_ID => Some("c".to_string()),
            _ => None,
        };
        let c = DashboardConfig::from_lookup(base).expect("valid");
        assert_eq!(c.auth.region(), Some("us-east-1"));
        let missing =
            DashboardConfig::from_lookup(|k| if k == AUTH_ISSUER { None } else { base(k) });
        assert!(missing.is_err_and(|e| e.to_string().contains(AUTH_ISSUER)));
        let plain = DashboardConfig::from_lookup(|k| {
            if k == AUTH_JWKS_URL {
                Some("http://example.com/keys".into())
            } else {
                base(k)
            }
        });
        assert!(plain.is_err());
        let local = DashboardConfig::from_lookup(|k| {
            if k == AUTH_JWKS_URL {
                Some("http://127.0.0.1:5000/p/.well-known/jwks.json".into())
            } else {
                base(k)
            }
        });
        assert!(local.is_ok());
    }
}
