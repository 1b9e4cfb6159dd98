//! The whole pipeline on this machine: moto (or `AWS_ENDPOINT_URL`), the
//! Genesys Cloud simulator, the traffic generator, the token refresher on its
//! schedule and a fleet of conversation-events containers running the
//! Lambda's handler code, on a compressed clock; a dashboard server; a report.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use std::time::Duration;

use genesys::ClientCredentials;
use lambda_support::{Clock, Redacted};
use serde::Serialize;
use token_broker::BrokerConfig;
use va_analytics::AnalyticsStore;
use va_analytics::dashboard::DashboardApi;
use va_enrichment::{SweepConfig, Sweeper};

use crate::aws::{DoubleSwitches, TestResources};
use crate::baselines::{NaiveContainer, OwnToken, OwnTokenPolicy};
use crate::replay::{self, DriveOptions, Fleet, Repeats};
pub use crate::replay::{FaultPlan, Progress};
use crate::sim::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Policies, RateScope, SimClock, SimConfig, Simulator,
};
use crate::traffic::{self, Traffic, TrafficConfig};

/// Which token policy the fleet runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The product: the shared token broker and the scheduled refresher.
    Broker,
    /// Each container fetches its own token and re-fetches it every 5 minutes.
    Naive,
    /// Refresh every 540000 ms per container, at most 45 containers, backoff.
    SeedAdvice,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Broker => "broker",
            Mode::Naive => "naive",
            Mode::SeedAdvice => "seed-advice",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StackOptions {
    pub containers: usize,
    pub sessions_per_minute: u32,
    pub minutes: u32,
    pub seed: u64,
    pub token_lifetime_s: u64,
    pub pool_size: usize,
    /// Share of events EventBridge delivers twice.
    pub duplicate_share: f64,
    /// Share of events Genesys sends again with a new EventBridge id.
    pub resend_share: f64,
    /// The analytics API shows a session this long after it ended.
    pub analytics_lag_s: u64,
    /// The sweeper first looks for a session this long after it ended.
    pub enrichment_delay_s: u64,
    pub faults: FaultPlan,
    /// The DynamoDB double's conflict hold and throttling threshold.
    pub double: DoubleSwitches,
    /// The SQS path with batches of this many events; `None`: per event.
    pub batch_size: Option<usize>,
    /// Simulated seconds per replay step; a step's deliveries run at once,
    /// so a longer step keeps more invocations in flight.
    pub step_s: u64,
    /// What the Platform API's 300 a minute is counted against (the
    /// simulator's switch; DESIGN 3.4).
    pub rate_scope: RateScope,
    /// Spread the bot sessions over this many bot flows (the sweeper asks
    /// per flow, so more flows need more requests); `None`: the default mix.
    pub flows: Option<usize>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            containers: 50,
            sessions_per_minute: 60,
            minutes: 60,
            seed: 1,
            token_lifetime_s: 3_600,
            pool_size: 1,
            duplicate_share: 0.02,
            resend_share: 0.01,
            analytics_lag_s: 60,
            enrichment_delay_s: 120,
            faults: FaultPlan::default(),
            double: DoubleSwitches::default(),
            batch_size: None,
            step_s: 1,
            rate_scope: RateScope::default(),
            flows: None,
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StackReport {
    pub mode: String,
    pub containers: usize,
    pub sessions: u64,
    pub events: u64,
    pub deliveries: u64,
    pub duplicates: u64,
    pub token_requests: u64,
    pub unauthorized: u64,
    pub rate_limited: u64,
    /// Redelivered invocations plus calls retried after a 401.
    pub retries: u64,
    pub rejected: u64,
    /// Events that failed every delivery attempt.
    pub dead_lettered: u64,
    /// Calls the enforcing double refused (`crate::iam`): 0 expected.
    pub access_denied: u64,
    pub exactly_once: bool,
    /// Platform API requests per ended bot session (lookups and sweeps).
    pub api_calls_per_session: f64,
    /// Every ended bot session was enriched by the end.
    pub enrichment_complete: bool,
    /// The largest `OldestPendingSeconds` a sweep reported: simulated
    /// seconds since the oldest pending bot session ended (it includes the
    /// conversation's time after the bot, before its last event).
    pub enrichment_wait_max_s: u64,
    /// Write conflicts and throttles retried in the containers.
    pub conflicts: u64,
    /// Invocations that failed on a conflict or throttle (Lambda retries them).
    pub conflict_failures: u64,
    /// Events dead-lettered after failing on conflicts or throttles.
    pub conflicts_lost: u64,
    /// Analytics write units per delivered event (see `metering`).
    pub write_units_per_event: f64,
    /// Items per committed transaction.
    pub items_per_tx_p50: u64,
    pub items_per_tx_p99: u64,
    /// Deliveries handled per second per container, wall clock.
    pub events_per_s_per_container: f64,
    /// Transactions in flight on average (their summed time over the wall
    /// time): what sets the odds that two meet on one item.
    pub transactions_in_flight: f64,
    /// The real per-event rate with as many transactions in flight, if a real
    /// one takes 20 ms (ASSUMPTION: DynamoDB's single-digit to tens of ms).
    pub equivalent_events_per_s: f64,
    /// Handler invocations per delivered event.
    pub invocations_per_event: f64,
    /// The first differences between the store and the generator's truth.
    pub differences: Vec<String>,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
    pub wall_seconds: f64,
}

/// What a run leaves up for the dashboard.
pub struct Running {
    pub sim: Simulator,
    pub res: TestResources,
    pub traffic: Traffic,
    /// Token slots, so the dashboard shows the health of each.
    pub pool_size: usize,
    /// The dashboard's sign-in (moto's Cognito) and its one viewer.
    pub sign_in: crate::sign_in::LocalSignIn,
}

/// Starts the simulator and the AWS resources for one run.
pub async fn start(opts: &StackOptions, traffic: Traffic) -> Result<Running, String> {
    let start_ms = traffic.events.first().map(|e| e.at_ms).unwrap_or(0);
    let sim = Simulator::start(SimConfig {
        policies: Policies {
            token_lifetime_s: opts.token_lifetime_s,
            idle_timeout_s: opts.faults.idle_timeout_s,
            live_token_cap: opts.faults.token_cap,
            analytics_lag_s: opts.analytics_lag_s,
            api_rate_scope: opts.rate_scope,
            ..Policies::default()
        },
        clock: Arc::new(SimClock::frozen_at(start_ms)),
        ..SimConfig::default()
    })
    .await
    .map_err(|e| format!("simulator: {e}"))?;
    sim.register_conversations(traffic.sim_conversations());
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .map_err(|e| e.to_string())?;
    crate::aws::set_double(&res.dynamodb, &res.analytics_table, opts.double)
        .await
        .map_err(|e| e.to_string())?;
    let sign_in = crate::sign_in::LocalSignIn::create(&res.config)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Running {
        sim,
        res,
        traffic,
        pool_size: opts.pool_size.max(1),
        sign_in,
    })
}

pub fn generate(opts: &StackOptions) -> Traffic {
    let base = TrafficConfig::default();
    let flows = match opts.flows {
        Some(n) => bot_flows(n),
        None => base.flows.clone(),
    };
    traffic::generate(&TrafficConfig {
        seed: opts.seed,
        sessions_per_minute: opts.sessions_per_minute,
        minutes: opts.minutes,
        flows,
        ..base
    })
}

/// `n` bot flows of equal weight, half voice and half digital.
fn bot_flows(n: usize) -> Vec<traffic::FlowSpec> {
    (0..n.max(1))
        .map(|i| traffic::FlowSpec {
            id: format!("b0f10000-0000-4000-8000-{i:012x}"),
            name: format!("Bot flow {i}"),
            flow_type: if i % 2 == 0 { "DIGITALBOT" } else { "BOT" }.into(),
            weight: 1,
        })
        .collect()
}

/// The dashboard for a run, over HTTP on `addr` (port 0 picks one). Returns
/// the bound address; the server stops when the returned handle is dropped.
pub async fn serve_dashboard(
    run: &Running,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let api = Arc::new(crate::product::dashboard(
        &run.res,
        run.sim.clock(),
        run.pool_size,
        va_analytics::dashboard::auth::Verifier::new(run.sign_in.auth.clone()),
    ));
    serve_api(api, addr).await
}

/// Serves `api` over HTTP on `addr` (port 0 picks one), as the local stack does.
pub async fn serve_api(
    api: Arc<DashboardApi>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let api = api.clone();
        async move {
            let query: Vec<(String, String)> = req
                .uri()
                .query()
                .map(|q| {
                    q.split('&')
                        .filter_map(|p| p.split_once('='))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let (parts, body) = req.into_parts();
            let authorization = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            // As API Gateway: the body, bounded (HTTP APIs take 10 MB).
            let body = axum::body::to_bytes(body, 10 << 20)
                .await
                .ok()
                .and_then(|b| String::from_utf8(b.to_vec()).ok())
                .filter(|b| !b.is_empty());
            let reply = api
                .reply_with_body(
                    parts.method.as_str(),
                    parts.uri.path(),
                    &query,
                    authorization,
                    body.as_deref(),
                )
                .await;
            axum::response::Response::builder()
                .status(reply.status)
                .header("content-type", reply.content_type)
                .header("cache-control", "no-store")
                .body(axum::body::Body::from(reply.body))
                .unwrap_or_default()
        }
    });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((bound, task))
}

/// The page URL for a run's time range.
pub fn dashboard_url(addr: SocketAddr, run: &Running) -> String {
    let from = run.traffic.events.first().map(|e| e.at_ms).unwrap_or(0);
    let to = run.traffic.events.last().map(|e| e.at_ms).unwrap_or(0) + 60_000;
    format!("http://{addr}/?from={from}&to={to}")
}

/// Pins a drive as a `Send` future where its concrete type is known: rustc
/// cannot always prove the SDK's futures `Send` for every lifetime when the
/// caller is spawned (a known limitation of its higher-ranked lifetime
/// checks), and this coercion proves it here, where the types are concrete.
fn send<'a, T>(
    f: impl std::future::Future<Output = T> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>> {
    Box::pin(f)
}

/// The store checked against the truth, and the run's figures.
async fn report(
    run: &Running,
    containers: usize,
    r: replay::DriveReport,
    began: Instant,
) -> StackReport {
    let end = run.traffic.events.last().map(|e| e.at_ms).unwrap_or(0);
    let store = AnalyticsStore::new(run.res.dynamodb.clone(), run.res.analytics_table.clone());
    let diffs = replay::compare(&store, &run.traffic.truth, 0, end + 3_600_000).await;
    let ms = |p: f64| replay::percentile(&r.latencies_us, p) as f64 / 1000.0;
    let mut units = run.res.meter.read();
    units.items_per_transaction.sort_unstable();
    let wall = began.elapsed().as_secs_f64().max(1e-9);
    StackReport {
        mode: String::new(),
        containers,
        sessions: run.traffic.truth.bot_sessions,
        events: run.traffic.truth.events,
        deliveries: r.deliveries,
        duplicates: r.duplicates,
        token_requests: r.token_requests,
        unauthorized: r.unauthorized,
        rate_limited: r.rate_limited,
        retries: r.redeliveries + r.retried_after_401,
        rejected: r.rejected,
        dead_lettered: r.dead_lettered,
        access_denied: run.res.denials().len() as u64,
        exactly_once: diffs.is_empty(),
        api_calls_per_session: r.api_calls as f64 / run.traffic.truth.bot_sessions.max(1) as f64,
        enrichment_complete: r.enrichment_complete,
        enrichment_wait_max_s: r.enrichment_wait_max_s,
        conflicts: r.conflicts,
        conflict_failures: r.conflict_failures,
        conflicts_lost: if r.conflict_failures > 0 {
            r.dead_lettered
        } else {
            0
        },
        write_units_per_event: units.units as f64 / r.deliveries.max(1) as f64,
        items_per_tx_p50: replay::percentile(&units.items_per_transaction, 50.0),
        items_per_tx_p99: replay::percentile(&units.items_per_transaction, 99.0),
        events_per_s_per_container: r.deliveries as f64 / wall / containers.max(1) as f64,
        invocations_per_event: r.invocations as f64 / r.deliveries.max(1) as f64,
        transactions_in_flight: units.transaction_busy_us as f64 / 1e6 / wall,
        equivalent_events_per_s: units.transaction_busy_us as f64 / 1e6 / wall / 0.020,
        differences: diffs.into_iter().take(5).collect(),
        latency_p50_ms: ms(50.0),
        latency_p90_ms: ms(90.0),
        latency_p99_ms: ms(99.0),
        wall_seconds: began.elapsed().as_secs_f64(),
    }
}

/// Runs one mode over `run`'s traffic.
pub async fn run_mode(
    run: &Running,
    opts: &StackOptions,
    mode: Mode,
    progress: Progress,
) -> StackReport {
    let cfg = BrokerConfig {
        pool_size: opts.pool_size,
        ..BrokerConfig::default()
    };
    let clock: Arc<dyn Clock> = run.sim.clock();
    let began = Instant::now();
    let repeats = Repeats {
        duplicates: opts.duplicate_share,
        resends: opts.resend_share,
    };
    let deliveries = replay::deliveries(&run.traffic, repeats, opts.seed);
    let drive_opts = DriveOptions {
        faults: opts.faults.clone(),
        batch_size: opts.batch_size,
        step: Duration::from_secs(opts.step_s.max(1)),
        ..DriveOptions::default()
    };
    let sweep = SweepConfig {
        delay: Duration::from_secs(opts.enrichment_delay_s),
        ..SweepConfig::default()
    };
    let mut report = match mode {
        Mode::Broker => {
            let containers = (0..opts.containers.max(1))
                .map(|_| Arc::new(crate::product::handler(&run.res, &run.sim)))
                .collect();
            let fleet = Fleet {
                containers,
                refresher: Some(Arc::new(crate::product::broker(
                    &run.res,
                    &run.sim,
                    cfg.clone(),
                ))),
                sweeper: Some(Arc::new(crate::product::sweeper(
                    &run.res, &run.sim, cfg, sweep,
                ))),
            };
            let r = send(replay::drive(
                &run.sim,
                &fleet,
                deliveries,
                &drive_opts,
                progress,
            ))
            .await;
            report(run, fleet.containers.len(), r, began).await
        }
        Mode::Naive | Mode::SeedAdvice => {
            let (policy, containers) = match mode {
                Mode::Naive => (OwnTokenPolicy::naive(), opts.containers.max(1)),
                _ => (OwnTokenPolicy::seed_advice(), opts.containers.clamp(1, 45)),
            };
            let creds = ClientCredentials {
                client_id: DEFAULT_CLIENT_ID.into(),
                client_secret: Redacted::new(DEFAULT_CLIENT_SECRET),
            };
            let own = || {
                OwnToken::new(
                    crate::product::api(&run.sim),
                    creds.clone(),
                    clock.clone(),
                    policy,
                )
            };
            let containers = (0..containers)
                .map(|_| {
                    Arc::new(NaiveContainer::new(
                        crate::product::handler(&run.res, &run.sim),
                        own(),
                    ))
                })
                .collect();
            // Its intents come from the same sweeper, on a token of its own.
            let sweeper = Sweeper::new(
                own(),
                crate::product::store(&run.res.as_role(crate::iam::Role::EnrichmentSweeper)),
                clock.clone(),
                sweep,
            );
            let fleet = Fleet {
                containers,
                refresher: None,
                sweeper: Some(Arc::new(sweeper)),
            };
            let r = send(replay::drive(
                &run.sim,
                &fleet,
                deliveries,
                &drive_opts,
                progress,
            ))
            .await;
            report(run, fleet.containers.len(), r, began).await
        }
    };
    report.mode = mode.name().to_string();
    report
}

/// One table row per report.
pub fn table(reports: &[StackReport]) -> String {
    let mut out = String::from(
        "| mode | containers | sessions | events | duplicates | token requests | 401s | 429s | retries | rejected | DLQ | AccessDenied | exactly once | API calls/session | oldest pending s | conflicts retried | failed on conflict | write units/event | items/tx p50 | items/tx p99 | events/s/container | invocations/event | p50 ms | p90 ms | p99 ms |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in reports {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.3} | {} | {} | {} | {:.2} | {} | {} | {:.1} | {:.3} | {:.1} | {:.1} | {:.1} |\n",
            r.mode,
            r.containers,
            r.sessions,
            r.events,
            r.duplicates,
            r.token_requests,
            r.unauthorized,
            r.rate_limited,
            r.retries,
            r.rejected,
            r.dead_lettered,
            r.access_denied,
            if r.exactly_once && r.enrichment_complete {
                "pass"
            } else {
                "FAIL"
            },
            r.api_calls_per_session,
            r.enrichment_wait_max_s,
            r.conflicts,
            r.conflict_failures,
            r.write_units_per_event,
            r.items_per_tx_p50,
            r.items_per_tx_p99,
            r.events_per_s_per_container,
            r.invocations_per_event,
            r.latency_p50_ms,
            r.latency_p90_ms,
            r.latency_p99_ms,
        ));
    }
    out
}
