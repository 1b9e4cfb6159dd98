//! enrichment-sweeper: run by an EventBridge schedule (every minute, one at a
//! time), it adds the final intent and bot result of the bot sessions that
//! conversation-events left pending: one sessions query and one reporting-turns
//! query per bot flow and sweep, through the fleet's token broker. A session
//! the analytics API does not show yet stays pending for the next sweep, up to
//! `ENRICHMENT_GIVE_UP_HOURS`, so lag and outages cost no count.
//!
//! Outside Lambda (no `AWS_LAMBDA_RUNTIME_API`) it runs one sweep against
//! whatever the environment points at and prints the report.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use lambda_support::{Clock, SystemClock, emf, telemetry};
use token_broker::{GenesysTokenSource, genesys_broker};
use va_analytics::AnalyticsStore;
use va_enrichment::lookup::BrokerAccess;
use va_enrichment::{SweepReport, Sweeper, SweeperConfig};

type ProductSweeper = Sweeper<BrokerAccess<GenesysTokenSource>>;

/// Leaves this much of the invocation for writing the result.
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

async fn sweep(sweeper: &ProductSweeper, remaining: Duration) -> Result<SweepReport, Error> {
    let deadline = tokio::time::Instant::now() + remaining.saturating_sub(DEADLINE_MARGIN);
    let report = sweeper.sweep(deadline).await;
    let count = |n: usize| n as f64;
    match &report {
        Ok(r) => {
            emf::emit(
                "enrichment-sweeper",
                SystemClock.now_ms(),
                &[],
                &[
                    ("SessionsEnriched", count(r.enriched)),
                    ("SessionsGivenUp", count(r.gave_up)),
                    ("SessionsPending", count(r.left)),
                    ("EnrichmentCalls", r.api_calls as f64),
                    ("EnrichmentFailures", count(r.failures.len())),
                    (
                        "RateLimitedTotal",
                        sweeper.stats.api.rate_limited.load(Ordering::Relaxed) as f64,
                    ),
                ],
            );
            for f in &r.failures {
                tracing::warn!(failure = %f, "enrichment lookup failed; the sessions stay pending");
            }
            tracing::info!(
                pending = r.pending,
                enriched = r.enriched,
                gave_up = r.gave_up,
                left = r.left,
                api_calls = r.api_calls,
                "sweep done"
            );
        }
        Err(e) => tracing::error!(error = %e, "sweep stopped by a store error"),
    }
    Ok(report?)
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
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // One HTTP client (one connection pool) for the token endpoint and the API.
    let api = genesys::GenesysClient::new(cfg.token.hosts.clone(), Default::default())?;
    let broker = Arc::new(genesys_broker(&aws, &cfg.token, api.clone(), clock.clone()));
    let store = AnalyticsStore::new(aws_sdk_dynamodb::Client::new(&aws), cfg.analytics_table);
    let sweeper = Arc::new(Sweeper::new(
        BrokerAccess { broker, api },
        store,
        clock,
        cfg.sweep,
    ));
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        let report = sweep(&sweeper, Duration::from_secs(60)).await?;
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
                // Lambda records the error type: the sweep stops only on the store.
                sweep(&sweeper, remaining)
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
