//! `va-admin`: operator commands, run with the deployer's AWS credentials.
//!
//! `va-admin redrive --queue-url URL --table TABLE` reads the dead-letter
//! queue (every shape the template produces: Lambda on-failure records,
//! EventBridge dead letters, the event queue's redrive, rejected events),
//! replays each event through the same handler core as conversation-events,
//! deletes each message whose event is now counted (or was already), and
//! prints a JSON report of what is left and why. Safe to run twice: the event
//! markers make a second count a no-op.
//!
//! `va-admin org add|list|disable|remove --table TENANT_TABLE ...` keeps the
//! tenant registry (one item per Genesys Cloud org: region, secret ARN, pool
//! size, enabled; never a secret). `add` checks the org before enabling it:
//! it reads the secret, obtains a token through the same broker and checks
//! it with `HEAD /api/v2/tokens/me`, and says what is wrong if anything is.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use lambda_support::{Clock, SystemClock, telemetry};
use token_broker::fleet::OrgFleet;
use token_broker::{BrokerConfig, Tenant, TenantRegistry};
use va_analytics::AnalyticsStore;
use va_handler::redrive::{RedriveOptions, redrive};
use va_handler::{DeadLetterQueue, EventHandler, HandlerConfig};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What `add` and `onboard` register.
#[derive(clap::Args)]
struct NewOrgArgs {
    /// The Genesys Cloud organization id.
    #[arg(long)]
    org_id: String,
    /// Its Genesys Cloud region (us-east-1, eu-west-1, ...).
    #[arg(long)]
    region: String,
    /// Token slots (each carries 300 Platform API requests a minute).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=32))]
    pool_size: u16,
    /// A name for people.
    #[arg(long, default_value = "")]
    name: String,
    /// The account's quota of event buses in this region (Service Quotas,
    /// Amazon EventBridge, "Event buses"); `add` warns at 90%.
    #[arg(long, default_value_t = va_admin::buses::DEFAULT_BUS_QUOTA)]
    event_bus_quota: u32,
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Register an org, check it, and enable it if the check passes.
    Add {
        #[command(flatten)]
        org: NewOrgArgs,
        /// The Secrets Manager secret with its {"clientId","clientSecret"}.
        #[arg(long)]
        secret_arn: String,
    },
    /// The AWS side of a new org in one command: store (or check) its OAuth
    /// client at `<stack>/org/<orgId>`, register and check it as `add`
    /// does, and print the steps left (Genesys side, org stack, viewers).
    /// The client secret is read from stdin, never from the command line.
    Onboard {
        #[command(flatten)]
        org: NewOrgArgs,
        /// The main stack's name (secrets live at `<stack>/org/<orgId>`).
        #[arg(long, env = "STACK_NAME")]
        stack_name: String,
        /// The OAuth client's id; with it, the client secret is read from
        /// stdin and stored. Without it, the stored secret is checked.
        #[arg(long)]
        client_id: Option<String>,
        /// The KMS key to encrypt a new secret with (the stack's
        /// `GenesysSecretKeyArn`, if it has one).
        #[arg(long)]
        kms_key_id: Option<String>,
    },
    /// An org leaves: its rules disabled, its late events dropped (not
    /// dead-lettered), every item of it deleted by key, its token items
    /// deleted. Prints a JSON report; `--dry-run` counts and changes nothing.
    Offboard {
        /// The org.
        #[arg(long)]
        org_id: String,
        /// The main stack's name (its org rules are `<stack>-org-*`).
        #[arg(long, env = "STACK_NAME")]
        stack_name: String,
        /// The analytics table (the stack's `AnalyticsTableName` output).
        #[arg(long, env = "ANALYTICS_TABLE")]
        analytics_table: String,
        /// Count what would be deleted; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Every registered org.
    List,
    /// Stop counting an org's events and refreshing its tokens.
    Disable {
        /// The org.
        #[arg(long)]
        org_id: String,
    },
    /// Remove an org's registry item (its token items expire on their own).
    Remove {
        /// The org.
        #[arg(long)]
        org_id: String,
    },
}

/// `va-admin redrive`'s arguments.
#[derive(clap::Args)]
struct RedriveArgs {
    /// The dead-letter queue's URL (the stack's `DeadLetterQueueUrl` output).
    #[arg(long, env = "DEAD_LETTER_QUEUE_URL")]
    queue_url: String,
    /// The analytics table (the stack's `AnalyticsTableName` output).
    #[arg(long, env = "ANALYTICS_TABLE")]
    table: String,
    /// Extra bot flow types, as the function's `BOT_FLOW_TYPES`.
    #[arg(long, env = "BOT_FLOW_TYPES", value_delimiter = ',')]
    bot_flow_types: Vec<String>,
    /// The tenant table, as the function's `TENANTS_TABLE`: a MultiOrg
    /// deployment counts each event for its source's org. One of this
    /// and `--single-org` is required, so a redrive never counts a
    /// multi-org deployment's events under single-org keys.
    #[arg(
        long,
        env = "TENANTS_TABLE",
        required_unless_present = "single_org",
        conflicts_with = "single_org"
    )]
    tenants_table: Option<String>,
    /// The deployment serves one org (`Tenancy=SingleOrg`).
    #[arg(long)]
    single_org: bool,
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
}

#[derive(Subcommand)]
enum Command {
    /// The tenant registry.
    Org {
        /// The tenant table (the stack's `TenantTableName` output). Before
        /// or after the subcommand (clap's global arguments cannot be
        /// required, so its absence is checked by hand).
        #[arg(long, env = "TENANTS_TABLE", global = true)]
        table: Option<String>,
        /// The token table (the stack's `TokenTableName` output), where
        /// `add`'s check leaves the org's first token.
        #[arg(long, env = "TOKEN_TABLE", global = true)]
        token_table: Option<String>,
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Replay the dead-letter queue and delete what is counted.
    Redrive(RedriveArgs),
    /// Moves the first layout's cells (before sharding: `agg#org`,
    /// `agg#flow#<flowId>`) to the sharded cells the dashboard reads, one
    /// minute per transaction, exactly once; safe to run again. Prints a
    /// JSON report; `--dry-run` counts and changes nothing.
    Migrate {
        /// The analytics table (the stack's `AnalyticsTableName` output).
        #[arg(long, env = "ANALYTICS_TABLE")]
        table: String,
        /// Count what would move; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Whether the Platform API's 300 requests a minute count per token (a
    /// token pool multiplies them) or per OAuth client (it does not), for
    /// this OAuth client's org. Spends one token's budget for a minute: run
    /// it when nothing else uses the client.
    RateScope {
        /// The org's Genesys Cloud region (us-east-1, eu-west-1, ...).
        #[arg(long)]
        region: String,
        /// The Secrets Manager secret with the OAuth client's {"clientId","clientSecret"}.
        #[arg(long)]
        secret_arn: String,
        /// Give up without a 429 after this many requests.
        #[arg(long, default_value_t = 400)]
        max_requests: u32,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let Cli { command } = Cli::parse();
    match command {
        Command::Org {
            table,
            token_table,
            command,
        } => match (table, token_table) {
            (Some(table), Some(token_table)) => org(table, token_table, command).await,
            _ => {
                eprintln!(
                    "va-admin org needs --table <TenantTableName> and --token-table <TokenTableName> \
                     (or TENANTS_TABLE and TOKEN_TABLE)"
                );
                ExitCode::from(2)
            }
        },
        Command::Migrate { table, dry_run } => migrate(table, dry_run).await,
        Command::RateScope {
            region,
            secret_arn,
            max_requests,
        } => rate_scope(&region, &secret_arn, max_requests).await,
        Command::Redrive(args) => redrive_dead_letters(args).await,
    }
}

/// Moves the first layout's cells (`va-admin migrate`).
async fn migrate(table: String, dry_run: bool) -> ExitCode {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = AnalyticsStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    resumable(
        va_analytics::migrate::V1Migration::new(&store)
            .run(dry_run)
            .await,
        "migration",
    )
}

/// Replays the dead-letter queue through the handler, configured by the
/// function's own rules so redrive counts as it does.
async fn redrive_dead_letters(args: RedriveArgs) -> ExitCode {
    let RedriveArgs {
        queue_url,
        table,
        bot_flow_types,
        tenants_table,
        single_org: _,
        max_messages,
        drop_rejected,
        wait_seconds,
    } = args;
    // The function's own configuration rules, so redrive counts as it does.
    let types = bot_flow_types.join(",");
    let cfg = match HandlerConfig::from_lookup(|k| match k {
        va_handler::config::ANALYTICS_TABLE => Some(table.clone()),
        va_handler::config::BOT_FLOW_TYPES => Some(types.clone()),
        token_broker::TENANTS_TABLE => tenants_table.clone(),
        _ => None,
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let tenancy = cfg.tenancy(&ddb, clock.clone());
    let handler = EventHandler::new(
        AnalyticsStore::new(ddb, cfg.analytics_table).with_retention(cfg.retention),
        cfg.kpi,
        clock,
    )
    .with_tenancy(tenancy);
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

async fn rate_scope(region: &str, secret_arn: &str, max_requests: u32) -> ExitCode {
    let hosts = match genesys::Hosts::for_region(region) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("--region: {e}");
            return ExitCode::from(2);
        }
    };
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secret = token_broker::SecretsManagerCredentials::new(
        aws_sdk_secretsmanager::Client::new(&aws),
        secret_arn,
        std::time::Duration::from_secs(60),
    );
    let verdict = match (
        secret.get().await,
        genesys::GenesysClient::new(hosts, genesys::RetryPolicy::default()),
    ) {
        (Ok(creds), Ok(client)) => genesys::probe_rate_scope(&client, &creds, max_requests).await,
        (Err(e), _) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        (_, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match verdict {
        Ok(genesys::RateScopeVerdict::PerToken { requests }) => println!(
            "per token: the first token was refused after {requests} requests, the second was served. \
             TokenPoolSize multiplies the budget."
        ),
        Ok(genesys::RateScopeVerdict::PerClient { requests }) => println!(
            "per OAuth client: the first token was refused after {requests} requests and the second too. \
             TokenPoolSize buys nothing; see the deploy guide, \"per token or per OAuth client\"."
        ),
        Ok(genesys::RateScopeVerdict::Inconclusive { requests, reason }) => {
            println!("inconclusive after {requests} requests: {reason}");
            return ExitCode::from(3);
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// A resumable command's end: its JSON report, or why it stopped.
fn resumable<T: serde::Serialize, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> ExitCode {
    match r {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{what} stopped (run it again to finish): {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every org needs an event bus of this account: say so before they run out.
async fn warn_near_bus_quota(aws: &aws_config::SdkConfig, quota: u32) {
    match va_admin::buses::count_event_buses(&aws_sdk_eventbridge::Client::new(aws)).await {
        Ok(count) => {
            if let Some(w) = va_admin::buses::quota_warning(count, quota) {
                eprintln!("{w}");
            }
        }
        Err(e) => eprintln!("could not count the account's event buses (quota {quota}): {e}"),
    }
}

/// What a registry change did, as an exit code: 2 when the org is unknown.
fn done(r: Result<bool, token_broker::StoreError>, what: &str) -> ExitCode {
    match r {
        Ok(true) => {
            println!("{what}");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("no such org");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn org(table: String, token_table: String, command: OrgCommand) -> ExitCode {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let registry = TenantRegistry::new(aws_sdk_dynamodb::Client::new(&aws), table.clone());
    match command {
        OrgCommand::List => list(&registry).await,
        OrgCommand::Disable { org_id } => done(
            registry
                .set_enabled(&org_id.to_ascii_lowercase(), false)
                .await,
            "disabled",
        ),
        OrgCommand::Remove { org_id } => done(
            registry.remove(&org_id.to_ascii_lowercase()).await,
            "removed",
        ),
        OrgCommand::Add { org, secret_arn } => {
            add(&aws, &registry, token_table, org, secret_arn).await
        }
        OrgCommand::Onboard {
            org,
            stack_name,
            client_id,
            kms_key_id,
        } => {
            onboard(
                &aws,
                &registry,
                token_table,
                org,
                stack_name,
                client_id,
                kms_key_id,
            )
            .await
        }
        OrgCommand::Offboard {
            org_id,
            stack_name,
            analytics_table,
            dry_run,
        } => {
            let o = va_admin::offboard::Offboard {
                org_id: org_id.to_ascii_lowercase(),
                stack_name,
                analytics_table,
                tenants_table: table,
                token_table,
                dry_run,
            };
            resumable(va_admin::offboard::offboard(&aws, &o).await, "offboarding")
        }
    }
}

/// Prints every registered org, one a line.
async fn list(registry: &TenantRegistry) -> ExitCode {
    match registry.list().await {
        Ok(all) => {
            for t in all {
                println!(
                    "{}\t{}\t{}\tslots={}\t{}\t{}",
                    t.org_id,
                    if t.enabled { "enabled" } else { "disabled" },
                    t.region,
                    t.pool_size,
                    t.secret_arn,
                    t.display_name
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `org onboard`: the org's secret, then `add`'s check, then what is left
/// to do on each side.
async fn onboard(
    aws: &aws_config::SdkConfig,
    registry: &TenantRegistry,
    token_table: String,
    mut org: NewOrgArgs,
    stack_name: String,
    client_id: Option<String>,
    kms_key_id: Option<String>,
) -> ExitCode {
    org.org_id = org.org_id.to_ascii_lowercase();
    let org_id = org.org_id.clone();
    let sm = aws_sdk_secretsmanager::Client::new(aws);
    let client = match client_id {
        Some(client_id) => {
            let mut secret = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut secret) {
                eprintln!("could not read the client secret from stdin: {e}");
                return ExitCode::from(2);
            }
            Some(va_admin::onboard::OAuthClient {
                client_id,
                client_secret: secret.trim().to_string(),
            })
        }
        None => None,
    };
    let name_ = va_admin::onboard::secret_name(&stack_name, &org_id);
    let secret_arn =
        match va_admin::onboard::ensure_secret(&sm, &name_, client.as_ref(), kms_key_id.as_deref())
            .await
        {
            Ok((arn, action)) => {
                println!("secret {name_}: {action:?}");
                arn
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
    let added = add(aws, registry, token_table, org, secret_arn).await;
    let events = aws_sdk_eventbridge::Client::new(aws);
    let source = va_admin::onboard::partner_source(&events, &org_id)
        .await
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            None
        });
    let aws_region = aws.region().map(ToString::to_string).unwrap_or_default();
    print!(
        "{}",
        va_admin::onboard::next_steps(&stack_name, &org_id, source.as_deref(), &aws_region)
    );
    added
}

/// Registers an org, checks it, and enables it if the check passes.
async fn add(
    aws: &aws_config::SdkConfig,
    registry: &TenantRegistry,
    token_table: String,
    org: NewOrgArgs,
    secret_arn: String,
) -> ExitCode {
    let NewOrgArgs {
        org_id,
        region,
        pool_size,
        name,
        event_bus_quota,
    } = org;
    if !va_events::is_uuid(&org_id) {
        eprintln!("--org-id must be the org's UUID");
        return ExitCode::from(2);
    }
    if let Err(e) = genesys::Hosts::for_region(&region) {
        eprintln!("--region: {e}");
        return ExitCode::from(2);
    }
    warn_near_bus_quota(aws, event_bus_quota).await;
    let tenant = Tenant {
        // Keys and groups use the lowercase form.
        org_id: org_id.to_ascii_lowercase(),
        region,
        secret_arn,
        pool_size: usize::from(pool_size),
        enabled: false,
        display_name: name,
        base_url: None,
        offboarded: false,
    };
    // Checked before anything is written: re-adding a live org (a new
    // secret, another pool size) never switches it off meanwhile.
    let known = match registry.get(&tenant.org_id).await {
        Ok(k) => k,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let fleet = OrgFleet::new(
        aws_sdk_dynamodb::Client::new(aws),
        aws_sdk_secretsmanager::Client::new(aws),
        token_table,
        Arc::new(SystemClock),
        BrokerConfig::default(),
        genesys::RetryPolicy::default(),
        std::time::Duration::from_secs(300),
        false,
    );
    let checked = fleet
        .validate(&tenant, std::time::Duration::from_secs(60))
        .await;
    record_check(registry, tenant, checked, known.is_some()).await
}

/// Enables the org when its check passed; otherwise registers it disabled,
/// or, when it was registered already, leaves it as it was.
async fn record_check(
    registry: &TenantRegistry,
    mut tenant: Tenant,
    checked: Result<(), impl std::fmt::Display>,
    known: bool,
) -> ExitCode {
    match checked {
        Ok(()) => {
            tenant.enabled = true;
            match registry.put(&tenant).await {
                Ok(()) => {
                    println!("org {} checked and enabled", tenant.org_id);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) if known => {
            eprintln!("not changed (the registered org is as it was): {e}");
            ExitCode::from(4)
        }
        Err(e) => match registry.put(&tenant).await {
            Ok(()) => {
                eprintln!("registered but left disabled: {e}");
                ExitCode::from(4)
            }
            Err(put) => {
                eprintln!("{e}; and it could not be registered: {put}");
                ExitCode::FAILURE
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    /// The guide writes `va-admin org add --table ...`; the tables may come
    /// before the subcommand as well.
    #[test]
    fn the_org_tables_go_before_or_after_the_subcommand() {
        for args in [
            &[
                "va-admin",
                "org",
                "list",
                "--table",
                "t",
                "--token-table",
                "k",
            ][..],
            &[
                "va-admin",
                "org",
                "--table",
                "t",
                "--token-table",
                "k",
                "list",
            ][..],
        ] {
            let cli = Cli::try_parse_from(args).expect("parses");
            let Command::Org {
                table, token_table, ..
            } = cli.command
            else {
                panic!("org");
            };
            assert_eq!(
                (table.as_deref(), token_table.as_deref()),
                (Some("t"), Some("k"))
            );
        }
    }
}
