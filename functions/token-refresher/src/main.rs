//! The token refresher: run by an EventBridge schedule, it keeps every token
//! slot fresh so the event handlers never have to fetch a token themselves.
//!
//! Outside Lambda (no `AWS_LAMBDA_RUNTIME_API`) it runs one tick against
//! whatever the environment points at (moto and the simulator locally) and
//! prints the report.

use std::sync::Arc;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use lambda_support::{SystemClock, emf, telemetry};
use token_broker::{
    GenesysTokenSource, SlotOutcome, TickReport, TokenBroker, TokenConfig, genesys_broker,
};

type Broker = TokenBroker<GenesysTokenSource>;

#[derive(Debug)]
struct TickFailed(String);

impl std::fmt::Display for TickFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TickFailed {}

async fn tick(broker: &Broker) -> Result<TickReport, TickFailed> {
    let report = broker.tick().await;
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
    emf::emit("token-refresher", broker.now_ms(), &[], &metrics);
    if report.failed() > 0 {
        let errors: Vec<String> = report
            .slots
            .iter()
            .filter_map(|s| match &s.outcome {
                SlotOutcome::Failed { error } => Some(format!("slot {}: {error}", s.slot)),
                _ => None,
            })
            .collect();
        return Err(TickFailed(errors.join("; ")));
    }
    Ok(report)
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
    let client = genesys::GenesysClient::new(cfg.hosts.clone(), Default::default())?;
    let broker = Arc::new(genesys_broker(&aws, &cfg, client, Arc::new(SystemClock)));
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        let report = tick(&broker).await?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    lambda_runtime::run(service_fn(
        move |_event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| {
            let broker = broker.clone();
            async move {
                tick(&broker).await.map_err(|e| lambda_runtime::Diagnostic {
                    error_type: "TokenRefresh".into(),
                    error_message: e.to_string(),
                })
            }
        },
    ))
    .await
}
