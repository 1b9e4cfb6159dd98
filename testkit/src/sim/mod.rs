//! A Genesys Cloud stand-in: a real HTTP server with the login host's token
//! endpoint and the slice of the Platform API this product calls, plus the
//! failure modes the product must survive. Every behaviour is either documented
//! in docs/DESIGN.md or marked an assumption with a switch to turn it off.

mod clock;
mod server;
mod state;

pub use clock::SimClock;
pub use state::{
    BotSession, BotTurn, Counters, FaultSide, Faults, Policies, RateScope, RevokeReason,
    SimConversation, TokenThrottle, TurnIntent,
};

use std::net::SocketAddr;
use std::sync::Arc;

use state::Shared;
use tokio::task::JoinHandle;

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .finish()
    }
}

/// What a simulator starts with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Loopback address to bind; port 0 picks a free one.
    pub bind: SocketAddr,
    /// OAuth clients: (client id, client secret).
    pub clients: Vec<(String, String)>,
    pub policies: Policies,
    pub clock: Arc<SimClock>,
    /// Organisation id reported by `GET /api/v2/tokens/me`.
    pub org_id: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            clients: vec![(DEFAULT_CLIENT_ID.into(), DEFAULT_CLIENT_SECRET.into())],
            policies: Policies::default(),
            clock: Arc::new(SimClock::real_time()),
            org_id: "7f3c1a52-0d4e-4f1b-9a63-2b8e5c9d0a11".into(),
        }
    }
}

/// The OAuth client every test uses unless it asks for another.
pub const DEFAULT_CLIENT_ID: &str = "5f4e3d2c-sim-client";
/// Its secret. Tests assert this string never reaches a log line.
pub const DEFAULT_CLIENT_SECRET: &str = "sim-secret-9c1f7d3b2a";

impl Simulator {
    /// Binds, starts serving, and returns once the socket accepts connections.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(&config));
        let task = tokio::spawn(server::serve(listener, shared.clone()));
        Ok(Self { shared, addr, task })
    }

    /// One base URL for both the login host and the API host.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn clock(&self) -> Arc<SimClock> {
        self.shared.clock.clone()
    }

    pub fn policies(&self) -> Policies {
        self.shared.lock().policies.clone()
    }

    pub fn set_policies(&self, policies: Policies) {
        self.shared.lock().policies = policies;
    }

    /// Changes one side's fault switches at run time.
    pub fn set_faults(&self, side: FaultSide, faults: Faults) {
        *self.shared.lock().faults_mut(side) = faults;
    }

    pub fn counters(&self) -> Counters {
        self.shared.counters()
    }

    /// The admin action "revoke every token of the org".
    pub fn revoke_all(&self) -> usize {
        self.shared.revoke_all(RevokeReason::Admin)
    }

    pub fn add_client(&self, id: &str, secret: &str) {
        self.shared.lock().clients.insert(id.into(), secret.into());
    }

    /// Makes conversations known to the Platform API endpoints.
    pub fn register_conversations<I: IntoIterator<Item = SimConversation>>(&self, convs: I) {
        let mut st = self.shared.lock();
        for c in convs {
            st.conversations.insert(c.id.clone(), c);
        }
    }

    /// Every token value issued so far. For tests that prove no token leaks into logs.
    pub fn issued_token_values(&self) -> Vec<String> {
        self.shared.lock().tokens.keys().cloned().collect()
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as the platform writes dates.
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// An RFC 3339 date as epoch ms; `None` if it is not one.
pub fn parse_iso(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}
