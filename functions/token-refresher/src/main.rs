//! The token refresher: run by an EventBridge schedule, it keeps every token
//! slot fresh so the event handlers never have to fetch a token themselves.
//! With `TENANTS_TABLE` set it serves every enabled org of the tenant
//! registry: each org's slots with its own region and secret, all orgs at
//! once (at most [`ORG_CONCURRENCY`] at a time, each cut off after
//! [`PER_ORG_LIMIT`]), metrics per org.
//!
//! Outside Lambda (no `AWS_LAMBDA_RUNTIME_API`) it runs one tick against
//! whatever the environment points at (moto and the simulator locally) and
//! prints the report.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use lambda_support::{Clock, SystemClock, emf, telemetry};
use serde_json::Value;
use token_broker::fleet::{NOT_REACHED, OrgFleet, OrgTick};
use token_broker::{
    GenesysTokenSource, SlotOutcome, TenantRegistry, TickReport, TokenBroker, TokenConfig,
    genesys_broker,
};

type Broker = TokenBroker<GenesysTokenSource>;

/// Orgs ticked at once.
const ORG_CONCURRENCY: usize = 16;
/// Time kept back from the invocation's deadline for the metrics and the reply.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// One slot's share of a tick: its fetch (four fifths of the lease, which
/// is at most 60 s) and the item's reads and writes. An org gets this per
/// slot; a hung org loses only that.
fn per_slot_limit(lease: Duration) -> Duration {
    lease.mul_f64(0.8) + Duration::from_secs(5)
}

#[derive(Debug)]
struct TickFailed(String);

impl std::fmt::Display for TickFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TickFailed {}

/// Emits one org's (or the single org's) metrics; the failures as text.
fn report_metrics(report: &TickReport, now_ms: i64, org: Option<&str>) -> Vec<String> {
    let min_expiry = report
        .slots
        .iter()
        .filter_map(|s| s.seconds_to_expiry)
        .min();
    let token_requests: u64 = report.slots.iter().map(|s| s.token_requests).sum();
    let mut metrics = vec![
        ("TokensRefreshed", report.refreshed() as f64),
        ("TokenRefreshSkipped", report.skipped() as f64),
        ("TokenRefreshFailed", report.failed() as f64),
        ("TokenRequests", token_requests as f64),
    ];
    if let Some(s) = min_expiry {
        metrics.push(("TokenExpiresInSeconds", s as f64));
    }
    let dims = emf::org_dimensions(org, emf::per_org_metrics_from_env());
    emf::emit("token-refresher", now_ms, &dims, &metrics);
    report
        .slots
        .iter()
        .filter_map(|s| match &s.outcome {
            SlotOutcome::Failed { error } => Some(format!("slot {}: {error}", s.slot)),
            _ => None,
        })
        .collect()
}

async fn tick(broker: &Broker) -> Result<TickReport, TickFailed> {
    let report = broker.tick().await;
    let errors = report_metrics(&report, broker.now_ms(), None);
    if errors.is_empty() {
        Ok(report)
    } else {
        Err(TickFailed(errors.join("; ")))
    }
}

/// Every enabled org; fails (for the alarm) if any org failed, after all ran.
async fn tick_orgs(
    fleet: &OrgFleet,
    registry: &TenantRegistry,
    deadline: tokio::time::Instant,
) -> Result<Vec<OrgTick>, TickFailed> {
    let tenants = registry
        .list()
        .await
        .map_err(|e| TickFailed(format!("the tenant registry could not be read: {e}")))?;
    // A warm container resumes where its last tick stopped short; a new
    // one starts at the minute's org, so it is not always the same orgs
    // that a short tick leaves behind.
    let start = usize::try_from(SystemClock.now_ms() / 60_000).unwrap_or(0);
    let per_slot = per_slot_limit(fleet.lease());
    let ticks = fleet
        .tick_all_within(&tenants, ORG_CONCURRENCY, per_slot, deadline, start)
        .await;
    let now = SystemClock.now_ms();
    let (failed, not_reached) = org_failures(&ticks, now);
    emf::emit(
        "token-refresher",
        now,
        &[],
        &[
            ("Orgs", ticks.len() as f64),
            ("OrgsFailed", failed.len() as f64),
            ("OrgsNotReached", f64::from(not_reached)),
        ],
    );
    if failed.is_empty() {
        Ok(ticks)
    } else {
        for f in &failed {
            tracing::error!(failure = %f, "org tick failed; other orgs were not affected");
        }
        Err(TickFailed(failed.join("; ")))
    }
}

/// The orgs whose tick failed (with why, each counted in its metric), and
/// how many the tick did not reach.
fn org_failures(ticks: &[OrgTick], now: i64) -> (Vec<String>, u32) {
    let mut failed = Vec::new();
    let mut not_reached = 0;
    for t in ticks {
        match &t.result {
            // Out of time, not broken: the next tick starts with it.
            Err(e) if e == NOT_REACHED => {
                not_reached += 1;
                tracing::warn!(org = %t.org_id, "org not reached in this tick");
            }
            Ok(report) => {
                let errors = report_metrics(report, now, Some(&t.org_id));
                if !errors.is_empty() {
                    failed.push(format!("org {}: {}", t.org_id, errors.join("; ")));
                }
            }
            Err(e) => {
                emf::emit(
                    "token-refresher",
                    now,
                    &emf::org_dimensions(Some(&t.org_id), emf::per_org_metrics_from_env()),
                    &[("TokenRefreshFailed", 1.0)],
                );
                failed.push(format!("org {}: {e}", t.org_id));
            }
        }
    }
    (failed, not_reached)
}

/// The refresher of one deployment: one org or many.
enum Refresher {
    Single(Arc<Broker>),
    Orgs(Arc<OrgFleet>, TenantRegistry),
}

impl Refresher {
    async fn run(&self, deadline: tokio::time::Instant) -> Result<Value, TickFailed> {
        match self {
            Refresher::Single(b) => tick(b)
                .await
                .map(|r| serde_json::to_value(r).unwrap_or_default()),
            Refresher::Orgs(fleet, registry) => tick_orgs(fleet, registry, deadline)
                .await
                .map(|r| serde_json::to_value(r).unwrap_or_default()),
        }
    }
}

/// The invocation's deadline (epoch ms from the runtime) as an `Instant`,
/// less the margin.
fn deadline_of(deadline_ms: u64) -> tokio::time::Instant {
    let now = u64::try_from(SystemClock.now_ms()).unwrap_or(0);
    let left = Duration::from_millis(deadline_ms.saturating_sub(now));
    tokio::time::Instant::now() + left.saturating_sub(DEADLINE_MARGIN)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let cfg = match TokenConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "token-refresher cannot start");
            return Err(e.into());
        }
    };
    // Clients are built once per container, outside the handler.
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let refresher = Arc::new(match &cfg.tenants_table {
        Some(table) => Refresher::Orgs(
            Arc::new(OrgFleet::from_config(&aws, &cfg, clock)),
            TenantRegistry::new(aws_sdk_dynamodb::Client::new(&aws), table.clone()),
        ),
        None => {
            let client = genesys::GenesysClient::new(cfg.hosts.clone(), Default::default())?;
            Refresher::Single(Arc::new(genesys_broker(&aws, &cfg, client, clock)))
        }
    });
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        let report = refresher
            .run(tokio::time::Instant::now() + Duration::from_secs(115))
            .await?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| {
            let refresher = refresher.clone();
            let deadline = deadline_of(event.context.deadline);
            async move {
                refresher
                    .run(deadline)
                    .await
                    .map_err(|e| lambda_runtime::Diagnostic {
                        error_type: "TokenRefresh".into(),
                        error_message: e.to_string(),
                    })
            }
        },
    ))
    .await
}
