//! enrichment-sweeper: run by an EventBridge schedule (every minute, one at a
//! time), it adds the final intent and bot result of the bot sessions that
//! conversation-events left pending: one sessions query and one reporting-turns
//! query per bot flow and sweep, through the fleet's token broker. A session
//! the analytics API does not show yet stays pending for the next sweep, up to
//! `ENRICHMENT_GIVE_UP_HOURS`, so lag and outages cost no count.
//!
//! With `TENANTS_TABLE` set, it sweeps every enabled org of the tenant
//! registry, each with that org's broker and keys, a few orgs at a time.
//!
//! Outside Lambda (no `AWS_LAMBDA_RUNTIME_API`) it runs one sweep against
//! whatever the environment points at and prints the report.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use lambda_support::{Clock, SystemClock, emf, telemetry};
use serde_json::Value;
use token_broker::fleet::OrgFleet;
use token_broker::{GenesysTokenSource, TenantRegistry, genesys_broker};
use va_analytics::{AnalyticsStore, SweepLease};
use va_enrichment::lookup::BrokerAccess;
use va_enrichment::{OrgSweep, OrgSweeps, SweepReport, Sweeper, SweeperConfig};

type ProductSweeper = Sweeper<BrokerAccess<GenesysTokenSource>>;

/// Leaves this much of the invocation for writing the result.
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// Orgs swept at once.
const ORG_CONCURRENCY: usize = 4;

/// The sweeper of one deployment: one org or many.
enum Sweeps {
    Single(Arc<ProductSweeper>),
    Orgs(Arc<OrgSweeps>, TenantRegistry),
}

/// The deployment's sweeps and their lease: one sweep at a time without
/// reserved concurrency.
struct LeasedSweeps {
    sweeps: Sweeps,
    lease: SweepLease,
}

impl LeasedSweeps {
    /// One sweep if no other holds the lease (until the invocation's end);
    /// `holder` names the invocation (Lambda's request id).
    async fn run(&self, remaining: Duration, holder: &str) -> Result<Value, Error> {
        // Fixed before the lease is taken: a slow acquire shortens the sweep,
        // never pushes it past the invocation's end.
        let deadline = tokio::time::Instant::now() + remaining.saturating_sub(DEADLINE_MARGIN);
        let now = SystemClock.now_ms();
        let until = now.saturating_add(i64::try_from(remaining.as_millis()).unwrap_or(i64::MAX));
        match self
            .lease
            .run(holder, now, until, self.sweeps.run(deadline))
            .await?
        {
            Some(result) => result,
            None => {
                tracing::info!("another sweep holds the lease; this one skips");
                Ok(serde_json::json!({"skipped": "another sweep is running"}))
            }
        }
    }
}

impl Sweeps {
    async fn run(&self, deadline: tokio::time::Instant) -> Result<Value, Error> {
        match self {
            Sweeps::Single(s) => Ok(serde_json::to_value(sweep(s, deadline, None).await?)?),
            Sweeps::Orgs(sweeps, registry) => {
                let tenants = registry.list().await?;
                let results = sweeps.sweep_all(&tenants, ORG_CONCURRENCY, deadline).await;
                let mut failed = Vec::new();
                for OrgSweep { org_id, result } in &results {
                    match result {
                        Ok(r) => log_report(r, None, Some(org_id)),
                        // Out of time, not broken: the next sweep starts with it.
                        Err(e) if e == va_enrichment::orgs::NOT_REACHED => {
                            tracing::warn!(org = %org_id, "org not reached in this sweep");
                        }
                        Err(e) => {
                            tracing::error!(org = %org_id, error = %e, "org sweep failed; other orgs were not affected");
                            failed.push(format!("org {org_id}: {e}"));
                        }
                    }
                }
                if failed.is_empty() {
                    Ok(serde_json::to_value(results)?)
                } else {
                    Err(failed.join("; ").into())
                }
            }
        }
    }
}

async fn sweep(
    sweeper: &ProductSweeper,
    deadline: tokio::time::Instant,
    org: Option<&str>,
) -> Result<SweepReport, Error> {
    let report = sweeper.sweep(deadline).await;
    match &report {
        Ok(r) => log_report(
            r,
            Some(sweeper.stats.api.rate_limited.load(Ordering::Relaxed)),
            org,
        ),
        Err(e) => tracing::error!(error = %e, "sweep stopped by a store error"),
    }
    Ok(report?)
}

fn log_report(r: &SweepReport, rate_limited: Option<u64>, org: Option<&str>) {
    let count = |n: usize| n as f64;
    let dims =
        lambda_support::emf::org_dimensions(org, lambda_support::emf::per_org_metrics_from_env());
    let mut metrics = vec![
        ("SessionsEnriched", count(r.enriched)),
        ("SessionsGivenUp", count(r.gave_up)),
        ("SessionsPending", count(r.left)),
        ("EnrichmentCalls", r.api_calls as f64),
        ("EnrichmentFailures", count(r.failures.len())),
        ("HoursRolled", count(r.hours_rolled)),
        ("RollUpFailures", count(usize::from(r.roll_up_failed))),
        ("EnrichmentItemFailures", count(r.item_failures.len())),
        ("EnrichmentWriteRetries", r.write_retries as f64),
        ("OldestPendingSeconds", r.oldest_pending_s as f64),
    ];
    if let Some(n) = rate_limited {
        metrics.push(("RateLimitedTotal", n as f64));
    }
    emf::emit("enrichment-sweeper", SystemClock.now_ms(), &dims, &metrics);
    for f in &r.failures {
        tracing::warn!(org = org.unwrap_or_default(), failure = %f, "enrichment lookup failed; the sessions stay pending");
    }
    if r.roll_up_failed {
        tracing::error!(
            org = org.unwrap_or_default(),
            "roll-up failed; the next sweep tries again"
        );
    }
    tracing::info!(
        org = org.unwrap_or_default(),
        pending = r.pending,
        enriched = r.enriched,
        gave_up = r.gave_up,
        left = r.left,
        item_failures = r.item_failures.len(),
        oldest_pending_s = r.oldest_pending_s,
        api_calls = r.api_calls,
        "sweep done"
    );
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let cfg = match SweeperConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "enrichment-sweeper cannot start");
            return Err(e.into());
        }
    };
    // Clients are built once per container, outside the handler.
    let sweeper = Arc::new(build(&cfg).await?);
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        let report = sweeper.run(Duration::from_secs(60), "local").await?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| {
            let sweeper = sweeper.clone();
            async move {
                let remaining = Duration::from_millis(
                    event
                        .context
                        .deadline
                        .saturating_sub(u64::try_from(SystemClock.now_ms()).unwrap_or(0)),
                );
                // Lambda records the error type: a sweep stops only on the
                // store (or, with many orgs, the registry or an org's sweep).
                sweeper
                    .run(remaining, &event.context.request_id)
                    .await
                    .map_err(|e| lambda_runtime::Diagnostic {
                        error_type: "Store".into(),
                        error_message: e.to_string(),
                    })
            }
        },
    ))
    .await
}

/// The sweeps with their clients, built once per container: one org's
/// sweeper, or every org's.
async fn build(cfg: &SweeperConfig) -> Result<LeasedSweeps, Error> {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let store =
        AnalyticsStore::new(ddb.clone(), cfg.analytics_table.clone()).with_retention(cfg.retention);
    let lease = SweepLease::new(ddb.clone(), cfg.analytics_table.clone());
    let sweeps = match &cfg.token.tenants_table {
        Some(table) => Sweeps::Orgs(
            Arc::new(OrgSweeps::new(
                Arc::new(OrgFleet::from_config(&aws, &cfg.token, clock.clone())),
                store,
                clock,
                cfg.sweep.clone(),
            )),
            TenantRegistry::new(ddb, table.clone()),
        ),
        None => {
            // One HTTP client (one connection pool) for the token endpoint and the API.
            let api = genesys::GenesysClient::new(cfg.token.hosts.clone(), Default::default())?;
            let broker = Arc::new(genesys_broker(&aws, &cfg.token, api.clone(), clock.clone()));
            Sweeps::Single(Arc::new(Sweeper::new(
                BrokerAccess { broker, api },
                store,
                clock,
                cfg.sweep.clone(),
            )))
        }
    };
    Ok(LeasedSweeps { sweeps, lease })
}
