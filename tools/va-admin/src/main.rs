//! `va-admin`: operator commands, run with the deployer's AWS credentials.
//!
//! `va-admin redrive --queue-url URL --table TABLE` reads the dead-letter
//! queue (every shape the template produces: Lambda on-failure records,
//! EventBridge dead letters, the event queue's redrive, rejected events),
//! replays each event through the same handler core as conversation-events,
//! deletes each message whose event is now counted (or was already), and
//! prints a JSON report of what is left and why. Safe to run twice: the event
//! markers make a second count a no-op.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use lambda_support::{Clock, SystemClock, telemetry};
use va_analytics::{AnalyticsStore, KpiConfig};
use va_handler::redrive::{RedriveOptions, redrive};
use va_handler::{DeadLetterQueue, EventHandler};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay the dead-letter queue and delete what is counted.
    Redrive {
        /// The dead-letter queue's URL (the stack's `DeadLetterQueueUrl` output).
        #[arg(long, env = "DEAD_LETTER_QUEUE_URL")]
        queue_url: String,
        /// The analytics table (the stack's `AnalyticsTableName` output).
        #[arg(long, env = "ANALYTICS_TABLE")]
        table: String,
        /// Extra bot flow types, as the function's `BOT_FLOW_TYPES`.
        #[arg(long, env = "BOT_FLOW_TYPES", value_delimiter = ',')]
        bot_flow_types: Vec<String>,
        /// Stop after this many messages.
        #[arg(long)]
        max_messages: Option<u64>,
        /// Delete events that are rejected again as malformed (their reasons
        /// are in the report's log); by default they stay on the queue.
        #[arg(long)]
        drop_rejected: bool,
        /// Long-poll wait per receive, 0 to 20 seconds.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(0..=20))]
        wait_seconds: i32,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let Cli { command } = Cli::parse();
    match command {
        Command::Redrive {
            queue_url,
            table,
            bot_flow_types,
            max_messages,
            drop_rejected,
            wait_seconds,
        } => {
            let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let mut kpi = KpiConfig::default();
            for t in bot_flow_types {
                let t = t.trim().to_ascii_uppercase();
                if !t.is_empty() && !kpi.is_bot(&t) {
                    kpi.bot_flow_types.push(t);
                }
            }
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let handler = EventHandler::new(
                AnalyticsStore::new(aws_sdk_dynamodb::Client::new(&aws), table),
                kpi,
                clock,
            );
            let queue = DeadLetterQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url);
            let opts = RedriveOptions {
                wait_s: wait_seconds,
                max_messages: max_messages.unwrap_or(u64::MAX),
                drop_rejected,
                ..RedriveOptions::default()
            };
            match redrive(&handler, &queue, &opts).await {
                Ok(report) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&report).unwrap_or_default()
                    );
                    if report.left == 0 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(3)
                    }
                }
                Err(e) => {
                    eprintln!("redrive failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
