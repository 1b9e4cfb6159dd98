//! What the dashboard shows: the aggregates of a time range and the token
//! health, as one JSON document. `dashboard-api` serves it in AWS and the
//! local stack serves it locally, with the same page.

use std::collections::BTreeMap;

use serde::Serialize;

use lambda_support::{Clock, ConfigErrors, Env};
use token_store::{StoreError, TokenStore};

use crate::kpi::{Scope, attr, duration_percentile};
use crate::store::{AnalyticsError, AnalyticsStore, Bucket};

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
    pub last_error: Option<String>,
}

/// One minute's counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[allow(missing_docs)]
pub struct Minute {
    pub minute_ms: i64,
    pub counters: BTreeMap<String, i64>,
}

/// Everything the page shows for one scope and range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Range start, epoch ms.
    pub from_ms: i64,
    /// Range end, epoch ms.
    pub to_ms: i64,
    /// The scope's partition key.
    pub scope: String,
    /// Per-minute counters.
    pub minutes: Vec<Minute>,
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
}

fn totals(buckets: &[Bucket]) -> BTreeMap<String, i64> {
    let mut t = BTreeMap::new();
    for b in buckets {
        for (k, v) in &b.counters {
            *t.entry(k.clone()).or_default() += v;
        }
    }
    t
}

/// Reads one scope's buckets (one Query) and every token slot (one read each).
pub async fn snapshot(
    store: &AnalyticsStore,
    tokens: &TokenStore,
    pool_size: usize,
    scope: &Scope,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Result<Snapshot, DashboardError> {
    let buckets = store.query(scope, from_ms, to_ms).await?;
    let totals = totals(&buckets);
    let get = |k: &str| totals.get(k).copied().unwrap_or(0);
    let ended = get(attr::ENDED);
    let rate = |k: &str| (ended > 0).then(|| get(k) as f64 / ended as f64);
    let mut top_intents: Vec<(String, i64)> = totals
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(attr::INTENT_PREFIX)?.to_string(), *v)))
        .collect();
    top_intents.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut outcomes: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (k, v) in &totals {
        if let Some(rest) = k.strip_prefix(attr::OUTCOME_PREFIX)
            && let Some((id, kind)) = rest.rsplit_once('#')
        {
            let e = outcomes.entry(id.to_string()).or_default();
            if kind == "success" {
                e.0 += v;
            } else {
                e.1 += v;
            }
        }
    }
    let mut health = Vec::new();
    for slot in 0..pool_size.max(1) {
        let item = tokens.read_health(slot).await?.unwrap_or_default();
        health.push(TokenHealth {
            slot,
            version: item.version,
            has_token: item.version > 0,
            expires_in_s: (item.version > 0).then(|| (item.expires_at - now_ms) / 1000),
            last_refresh_ms: item.refreshed_at,
            lease_held: item.lease_live(now_ms),
            failures: item.failures,
            last_error: item.last_error,
        });
    }
    let count = get(attr::DURATION_COUNT);
    Ok(Snapshot {
        from_ms,
        to_ms,
        scope: match scope {
            Scope::Org => "all flows".to_string(),
            Scope::Flow(id) => format!("flow {id}"),
        },
        minutes: buckets
            .into_iter()
            .map(|b| Minute {
                minute_ms: b.minute_ms,
                counters: b.counters,
            })
            .collect(),
        containment_rate: rate(attr::CONTAINED),
        escalation_rate: rate(attr::ESCALATED),
        abandonment_rate: rate(attr::ABANDONED),
        duration_p50_s: duration_percentile(&totals, 50.0),
        duration_p90_s: duration_percentile(&totals, 90.0),
        duration_p99_s: duration_percentile(&totals, 99.0),
        average_duration_s: (count > 0)
            .then(|| get(attr::DURATION_MS_SUM) as f64 / count as f64 / 1000.0),
        top_intents,
        outcomes,
        totals,
        tokens: health,
        generated_at_ms: now_ms,
    })
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

    fn error(status: u16, message: &str) -> Self {
        Self::json(status, serde_json::json!({ "error": message }).to_string())
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
    pub clock: std::sync::Arc<dyn Clock>,
}

/// How far back the page looks when the request names no range.
pub const DEFAULT_MINUTES: i64 = 180;

impl DashboardApi {
    /// Answers one request.
    pub async fn reply(&self, method: &str, path: &str, query: &[(String, String)]) -> Reply {
        if method != "GET" && method != "HEAD" {
            return Reply::error(405, "only GET");
        }
        match path.trim_end_matches('/') {
            "" | "/index.html" => Reply {
                status: 200,
                content_type: "text/html; charset=utf-8",
                body: PAGE.to_string(),
            },
            "/api/dashboard" => self.data(query).await,
            _ => Reply::error(404, "not found"),
        }
    }

    async fn data(&self, query: &[(String, String)]) -> Reply {
        let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
        let number = |k: &str| {
            get(k).map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("`{k}` must be a whole number"))
            })
        };
        let now = self.clock.now_ms();
        let (from, to, minutes) = match (number("from"), number("to"), number("minutes")) {
            (Some(Err(e)), _, _) | (_, Some(Err(e)), _) | (_, _, Some(Err(e))) => {
                return Reply::error(400, &e);
            }
            (from, to, minutes) => (
                from.and_then(Result::ok),
                to.and_then(Result::ok),
                minutes.and_then(Result::ok).unwrap_or(DEFAULT_MINUTES),
            ),
        };
        let to = to.unwrap_or(now);
        let from = from.unwrap_or(to - minutes.clamp(1, 7 * 24 * 60) * 60_000);
        if from > to || to - from > 31 * 86_400_000 {
            return Reply::error(400, "the range must be ordered and at most 31 days");
        }
        let scope = match get("flow") {
            None | Some("") => Scope::Org,
            Some(f)
                if f.len() <= 64 && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                Scope::Flow(f.to_string())
            }
            Some(_) => return Reply::error(400, "`flow` must be a flow id"),
        };
        match snapshot(
            &self.store,
            &self.tokens,
            self.pool_size,
            &scope,
            from,
            to,
            now,
        )
        .await
        {
            Ok(s) => match serde_json::to_string(&s) {
                Ok(body) => Reply::json(200, body),
                Err(e) => Reply::error(500, &e.to_string()),
            },
            Err(e) => {
                tracing::error!(error = %e, "dashboard query failed");
                Reply::error(502, "the store could not be read")
            }
        }
    }
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
}

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
        let secret_id = env.required(
            "GENESYS_SECRET_ID",
            "the secret's name or ARN (only to find the token items)",
        );
        let pool_size = env.number("TOKEN_POOL_SIZE", 1, 1..=32) as usize;
        env.finish(Self {
            analytics_table,
            token_table,
            secret_id,
            pool_size,
        })
    }
}
