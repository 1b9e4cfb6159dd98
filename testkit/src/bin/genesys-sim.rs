//! Runs the Genesys Cloud simulator as a standalone server on loopback.
//!
//! Control it at run time through `/sim/*` (counters, policies, faults, clock,
//! revoke-all); see the README.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use testkit::sim::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Policies, RateScope, SimClock, SimConfig, Simulator,
    TokenThrottle,
};
use testkit::traffic::{self, TrafficConfig};

#[derive(Parser, Debug)]
#[command(about = "Genesys Cloud simulator: token endpoint, Platform API slice, faults")]
struct Args {
    /// Loopback port (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long, default_value = DEFAULT_CLIENT_ID)]
    client_id: String,
    /// The OAuth client secret the token endpoint accepts.
    #[arg(long, env = "GENESYS_SIM_CLIENT_SECRET", default_value = DEFAULT_CLIENT_SECRET, hide_default_value = true)]
    client_secret: String,
    /// `expires_in` of issued tokens, seconds.
    #[arg(long, default_value_t = 86_400)]
    token_lifetime: u64,
    /// Idle-token timeout, seconds.
    #[arg(long)]
    idle_timeout: Option<u64>,
    /// Live tokens per client before the oldest is revoked (an assumption).
    #[arg(long)]
    token_cap: Option<usize>,
    /// Token-endpoint requests per client per minute.
    #[arg(long)]
    token_rate_limit: Option<u32>,
    /// How a throttled token request is answered: the platform's 400
    /// `invalid_request` "rate limit exceeded", or (a switch) a 429.
    #[arg(long, value_enum, default_value = "400")]
    token_throttle: TokenThrottle,
    /// Platform API requests per minute (0 turns the limit off).
    #[arg(long, default_value_t = 300)]
    api_rate_limit: u32,
    /// What that budget is counted against: each token, or the OAuth client.
    #[arg(long, value_enum, default_value = "per-token")]
    rate_scope: RateScope,
    /// ASSUMPTION: Platform API requests per minute across all tokens of the
    /// org (the documented 3000 per organization app); off unless given.
    #[arg(long)]
    app_rate_limit: Option<u32>,
    /// Analytics ingestion lag, seconds: a bot session is listed this long
    /// after it completed (real platform: seconds to minutes).
    #[arg(long, default_value_t = 0)]
    analytics_lag: u64,
    /// ASSUMPTION (body code): the OAuth client lacks `architect:flow:view`,
    /// so `GET /api/v2/flows/{flowId}` answers 403.
    #[arg(long)]
    flows_forbidden: bool,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Generate this many minutes of conversations (for the Platform API) from `--seed`.
    #[arg(long, default_value_t = 0)]
    traffic_minutes: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let clock = Arc::new(SimClock::real_time());
    clock.set_speed(args.speed);
    let sim = Simulator::start(SimConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], args.port)),
        clients: vec![(args.client_id.clone(), args.client_secret.clone())],
        policies: Policies {
            token_lifetime_s: args.token_lifetime,
            idle_timeout_s: args.idle_timeout,
            token_rate_limit_per_min: args.token_rate_limit,
            token_throttle: args.token_throttle,
            live_token_cap: args.token_cap,
            api_rate_limit_per_min: (args.api_rate_limit > 0).then_some(args.api_rate_limit),
            api_rate_scope: args.rate_scope,
            app_rate_limit_per_min: args.app_rate_limit,
            analytics_lag_s: args.analytics_lag,
            invented_session_intents: false,
            flows_forbidden: args.flows_forbidden,
        },
        clock: clock.clone(),
        ..SimConfig::default()
    })
    .await?;
    if args.traffic_minutes > 0 {
        let t = traffic::generate(&TrafficConfig {
            seed: args.seed,
            minutes: args.traffic_minutes,
            start_ms: clock.now_ms(),
            ..TrafficConfig::default()
        });
        sim.register_conversations(t.sim_conversations());
        eprintln!("registered {} conversations", t.conversations.len());
    }
    println!("genesys-sim listening on {}", sim.base_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
