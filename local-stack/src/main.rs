//! `cargo run -p local-stack`: the product end to end on this machine, and
//! side by side with the integrations it replaces (`--compare`).
//!
//! Starts moto (or uses `--aws-endpoint` / `AWS_ENDPOINT_URL`) and the Genesys
//! Cloud simulator, creates the tables and the OAuth secret, runs the token
//! refresher on its schedule and a fleet of conversation-events containers
//! (the Lambda's handler code) over generated traffic on a compressed clock,
//! serves the dashboard, and ends with a report. Ctrl-C stops everything.
//! Why indicatif: a maintained progress bar that degrades to nothing when
//! standard error is not a terminal.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use testkit::stack::{self, FaultPlan, Mode, StackOptions, StackReport};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Broker,
    Naive,
    SeedAdvice,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Broker => Mode::Broker,
            ModeArg::Naive => Mode::Naive,
            ModeArg::SeedAdvice => Mode::SeedAdvice,
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    about = "Run the Virtual Agent analytics pipeline locally against moto and the Genesys Cloud simulator"
)]
struct Args {
    /// Token policy of the fleet.
    #[arg(long, value_enum, default_value = "broker")]
    mode: ModeArg,
    /// Run broker, naive and seed-advice on the same traffic; one table.
    #[arg(long)]
    compare: bool,
    /// Handler containers in the fleet.
    #[arg(long, default_value_t = 50)]
    containers: usize,
    /// Bot sessions a simulated minute (per org with `--orgs`); default 60,
    /// or 2 with more than 10 orgs.
    #[arg(long)]
    sessions_per_minute: Option<u32>,
    /// Simulated minutes of traffic; default 60, or 10 with more than 10 orgs.
    #[arg(long)]
    minutes: Option<u32>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `expires_in` of the simulator's tokens, seconds.
    #[arg(long, default_value_t = 3_600)]
    token_lifetime: u64,
    #[arg(long, default_value_t = 1)]
    pool_size: usize,
    /// Share of events delivered twice (same EventBridge id).
    #[arg(long, default_value_t = 0.02)]
    duplicates: f64,
    /// Share of events Genesys sends again (new EventBridge id, same content).
    #[arg(long, default_value_t = 0.01)]
    resends: f64,
    /// Seconds after a session ends before the analytics API shows it.
    #[arg(long, default_value_t = 60)]
    analytics_lag: u64,
    /// Seconds after a session ends before the sweeper first looks for it.
    #[arg(long, default_value_t = 120)]
    enrichment_delay: u64,
    /// Revoke every token every N simulated minutes.
    #[arg(long)]
    revoke_every: Option<u32>,
    /// The org's idle-token timeout, seconds.
    #[arg(long)]
    idle_timeout: Option<u64>,
    /// Live tokens per client before the oldest is revoked (a simulator assumption).
    #[arg(long)]
    token_cap: Option<usize>,
    /// A storm of N API 429s every 10 simulated minutes.
    #[arg(long)]
    api_429_storm: Option<u32>,
    /// The token endpoint fails for N simulated minutes, from minute 20.
    #[arg(long)]
    token_endpoint_outage: Option<u32>,
    /// The DynamoDB double holds each transaction's items this long before
    /// committing: a low local rate with a long hold has the conflict odds of
    /// a high real rate (see `testkit/src/moto_launcher.py`).
    #[arg(long, default_value_t = 0)]
    tx_hold_ms: u64,
    /// The DynamoDB double throttles one item above this many write units a second.
    #[arg(long, default_value_t = 1_000)]
    item_wcu_per_s: u32,
    /// Deliver through SQS in batches of up to N events per invocation (the
    /// template's DeliveryMode=Batch); default: one event per invocation.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Simulated seconds per replay step (a step's deliveries run at once).
    #[arg(long, default_value_t = 1)]
    step_seconds: u64,
    /// What the simulator counts the Platform API's 300 requests a minute
    /// against: each token (the default) or the OAuth client (the disputed
    /// other reading; see docs/DESIGN.md 3.4).
    #[arg(long, value_enum, default_value = "per-token")]
    rate_scope: testkit::sim::RateScope,
    /// Spread the bot sessions over N bot flows (the sweeper's requests grow
    /// with the flows that had sessions); default: the usual three flows.
    #[arg(long)]
    flows: Option<usize>,
    /// An AWS endpoint to use instead of starting moto (same as AWS_ENDPOINT_URL).
    #[arg(long)]
    aws_endpoint: Option<String>,
    /// Dashboard address (port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:0")]
    dashboard: SocketAddr,
    /// Keep serving the dashboard after the run until Ctrl-C.
    #[arg(long)]
    keep_serving: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Serve N Genesys Cloud orgs from one deployment (the tenant registry):
    /// each its own simulator, region, token lifetime and traffic; with 3 or
    /// more, org 2 has a wrong secret and org 3 is revoked every 10 minutes.
    /// Reports the ground-truth check per org.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=200))]
    orgs: Option<u32>,
}

fn bar(label: &str, json: bool) -> ProgressBar {
    let pb = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(1)
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>12} [{bar:40}] {pos}/{len} simulated min  {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_prefix(label.to_string());
    pb
}

/// `--orgs N`: one deployment, N orgs, a report per org; the dashboard with
/// one viewer per org (each sees only their org) and one who sees them all.
async fn run_orgs(args: &Args, n: u32) -> Result<bool, String> {
    use testkit::orgs::{self, OrgRunOptions, OrgSpec};
    let specs: Vec<OrgSpec> = (0..n).map(|i| OrgSpec::nth(i, n >= 3)).collect();
    let opts = OrgRunOptions {
        // Many orgs: a little traffic each, so 150 finish in minutes.
        sessions_per_minute: args
            .sessions_per_minute
            .unwrap_or(if n > 10 { 2 } else { 60 }),
        minutes: args.minutes.unwrap_or(if n > 10 { 10 } else { 60 }),
        repeats: testkit::replay::Repeats {
            duplicates: args.duplicates.clamp(0.0, 1.0),
            resends: args.resends.clamp(0.0, 1.0),
        },
        step: std::time::Duration::from_secs(args.step_seconds.clamp(1, 60)),
        ..OrgRunOptions::default()
    };
    if !args.json {
        eprintln!(
            "{n} orgs, {} sessions/min each for {} simulated minutes{}",
            opts.sessions_per_minute,
            opts.minutes,
            if n >= 3 {
                " (org 2: wrong secret; org 3: revoked every 10 minutes)"
            } else {
                ""
            }
        );
    }
    let res = testkit::aws::TestResources::create(
        testkit::sim::DEFAULT_CLIENT_ID,
        testkit::sim::DEFAULT_CLIENT_SECRET,
    )
    .await
    .map_err(|e| e.to_string())?;
    // One deployment with Tenancy=MultiOrg: its denials are the report's.
    let res = orgs::multi_org(&res)?;
    let reports = orgs::run(&res, &specs, &opts).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())?
        );
    } else {
        println!("\n{}", orgs::table(&reports));
        for (r, spec) in reports.iter().zip(&specs) {
            if let Some(f) = &r.last_failure {
                println!("{}: the refresher reports: {f}", r.name);
            }
            if spec.wrong_secret && r.counts_exact {
                println!(
                    "{}: every event counted exactly once; intents wait for a token the org's secret cannot get",
                    r.name
                );
            } else {
                for d in &r.differences {
                    println!("{}: {d}", r.name);
                }
            }
        }
    }
    // Every call authorized as the template's roles allow (`testkit::iam`).
    let denials = res.denials();
    println!(
        "AccessDenied: {} (every call signed by its function's role)",
        denials.len()
    );
    for d in denials.iter().take(5) {
        println!("  {}", d.message);
    }
    // Every org's events counted exactly once; the healthy ones (all but a
    // wrong secret) enriched too; nothing rejected or lost.
    let ok = denials.is_empty()
        && reports.iter().zip(&specs).all(|(r, spec)| {
            r.counts_exact
                && r.rejected == 0
                && r.dead_lettered == 0
                && (spec.wrong_secret || (r.exactly_once && r.enrichment_complete))
        });
    if args.keep_serving {
        let (addr, viewers, _server) =
            orgs::serve_dashboard(&res, &specs, &opts, args.dashboard).await?;
        eprintln!(
            "dashboard at http://{addr}/?from={}&to={}",
            opts.start_ms,
            opts.start_ms + i64::from(opts.minutes + 60) * 60_000,
        );
        for v in &viewers {
            eprintln!("  sign in as {} / {}: {}", v.username, v.password, v.sees);
        }
        eprintln!("serving the dashboard until Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = res.delete().await;
    Ok(ok)
}

async fn run(args: Args) -> Result<bool, String> {
    if let Some(n) = args.orgs {
        return run_orgs(&args, n).await;
    }
    let opts = StackOptions {
        containers: args.containers,
        sessions_per_minute: args.sessions_per_minute.unwrap_or(60),
        minutes: args.minutes.unwrap_or(60),
        seed: args.seed,
        token_lifetime_s: args.token_lifetime,
        pool_size: args.pool_size,
        duplicate_share: args.duplicates.clamp(0.0, 1.0),
        resend_share: args.resends.clamp(0.0, 1.0),
        analytics_lag_s: args.analytics_lag,
        enrichment_delay_s: args.enrichment_delay,
        faults: FaultPlan {
            revoke_every_min: args.revoke_every,
            idle_timeout_s: args.idle_timeout,
            token_cap: args.token_cap,
            api_429_storm: args.api_429_storm,
            token_endpoint_outage_min: args.token_endpoint_outage,
        },
        double: testkit::aws::DoubleSwitches {
            tx_hold_ms: args.tx_hold_ms,
            item_wcu_per_s: args.item_wcu_per_s,
            conflicts: true,
            unavailable: false,
        },
        batch_size: args.batch_size.map(|n| n.clamp(1, 100)),
        step_s: args.step_seconds.max(1),
        rate_scope: args.rate_scope,
        flows: args.flows.map(|n| n.clamp(1, 10_000)),
    };
    let modes: Vec<Mode> = if args.compare {
        vec![Mode::Broker, Mode::Naive, Mode::SeedAdvice]
    } else {
        vec![args.mode.into()]
    };
    let traffic = stack::generate(&opts);
    if !args.json {
        eprintln!(
            "{} sessions/min for {} simulated minutes: {} conversations, {} events; {} containers",
            opts.sessions_per_minute,
            opts.minutes,
            traffic.conversations.len(),
            traffic.events.len(),
            opts.containers
        );
    }
    let mut reports: Vec<StackReport> = Vec::new();
    let mut keep = None;
    for mode in modes {
        let running = stack::start(&opts, traffic.clone()).await?;
        let (addr, server) = stack::serve_dashboard(&running, args.dashboard)
            .await
            .map_err(|e| format!("dashboard server: {e}"))?;
        if !args.json {
            eprintln!(
                "{:>12}: dashboard at {} (sign in as {} / {}: a viewer made for this run in moto's Cognito)",
                mode.name(),
                stack::dashboard_url(addr, &running),
                running.sign_in.username,
                running.sign_in.password,
            );
        }
        let pb = bar(mode.name(), args.json);
        let progress_bar = pb.clone();
        let report = stack::run_mode(
            &running,
            &opts,
            mode,
            Arc::new(move |done, total| {
                progress_bar.set_length(total);
                progress_bar.set_position(done);
            }),
        )
        .await;
        pb.finish_and_clear();
        reports.push(report);
        if keep.is_none() {
            keep = Some((running, server));
        } else {
            server.abort();
            let _ = running.res.delete().await;
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())?
        );
    } else {
        println!("\n{}", stack::table(&reports));
        for r in &reports {
            for d in &r.differences {
                println!("{}: {d}", r.mode);
            }
        }
    }
    // Revocations and idle timeouts kill tokens under callers' feet: a 401 per
    // affected call is then expected, and recovered from with one retry.
    let tokens_killed =
        opts.faults.revoke_every_min.is_some() || opts.faults.idle_timeout_s.is_some();
    let broker_ok = reports.iter().filter(|r| r.mode == "broker").all(|r| {
        r.exactly_once
            && r.enrichment_complete
            && r.dead_lettered == 0
            && r.access_denied == 0
            && (tokens_killed || r.unauthorized == 0)
    });
    if args.keep_serving
        && let Some((running, _server)) = &keep
    {
        eprintln!("serving the dashboard until Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
        let _ = running.res.delete().await;
    } else if let Some((running, _)) = &keep {
        let _ = running.res.delete().await;
    }
    Ok(broker_ok)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(url) = &args.aws_endpoint {
        // SAFETY: no other thread exists yet; the runtime starts below.
        unsafe { std::env::set_var("AWS_ENDPOINT_URL", url) };
    }
    match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(run_until_ctrl_c(args)),
        Err(e) => {
            eprintln!("local-stack: cannot start the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run_until_ctrl_c(args: Args) -> std::process::ExitCode {
    tokio::select! {
        r = run(args) => match r {
            Ok(true) => std::process::ExitCode::SUCCESS,
            Ok(false) => {
                eprintln!("the broker run did not pass its checks (exactly once, nothing dead-lettered, no 401s unless tokens were killed)");
                std::process::ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("local-stack: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        _ = tokio::signal::ctrl_c() => {
            // Returning ends the process: moto watches our pipe and exits,
            // and the simulator and dashboard run inside this process.
            eprintln!("interrupted; stopping");
            std::process::ExitCode::from(130)
        }
    }
}
