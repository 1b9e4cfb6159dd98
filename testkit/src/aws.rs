//! A real AWS-API-compatible endpoint for tests.
//!
//! By default a pinned moto is installed into a virtualenv inside the build
//! directory (once), and this test process starts a small pool of servers on
//! free loopback ports as tests need them (`MotoPool`; `SeparateMoto` for a
//! server of a test's own). Each stops when the process ends: it watches its
//! stdin, which only this process holds, so it exits even after a panic or
//! a kill.
//! With `AWS_ENDPOINT_URL` set, that endpoint is used instead; with
//! `VA_TEST_REAL_AWS=1`, the default AWS configuration (a real account).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};

/// The moto release the suite is pinned to (see docs/DESIGN.md).
pub const MOTO_VERSION: &str = "5.2.5";
const MOTO_EXTRAS: &str = "server,dynamodb,secretsmanager,events,sqs,cognitoidp";

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(
        "python3 was not found on PATH ({0}); the test harness needs Python 3 with pip and venv (for moto and the Genesys Cloud SDK)"
    )]
    NoPython(String),
    #[error("{0}")]
    Install(String),
    #[error("starting moto failed: {0}")]
    Start(String),
    #[error("AWS call failed: {0}")]
    Aws(String),
}

/// Where the tests send AWS traffic.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// moto, started by this process.
    Moto { url: String, pid: u32 },
    /// `AWS_ENDPOINT_URL`, started by someone else.
    External { url: String },
    /// The default AWS configuration: a real account.
    RealAws,
}

impl Endpoint {
    pub fn url(&self) -> Option<&str> {
        match self {
            Self::Moto { url, .. } | Self::External { url } => Some(url),
            Self::RealAws => None,
        }
    }
}

struct MotoProcess {
    url: String,
    /// The enforcing double's front (`iam::proxy`) that tests talk to.
    front: String,
    child: Child,
    /// Held open for the life of the process; its closing tells moto to exit.
    _stdin: ChildStdin,
}

/// moto servers of this test process. moto answers on one core (Python's
/// GIL), so tests that share one server share one core; each `TestResources`
/// leases the least-busy server, started on first use. `VA_MOTO_SERVERS`
/// sets the count (default: the machine's cores; 1 to 4 either way).
struct MotoPool {
    servers: Vec<OnceLock<Result<Mutex<MotoProcess>, String>>>,
    /// Leases held per server; choosing and counting happen under one lock.
    leases: Mutex<Vec<usize>>,
}

static POOL: OnceLock<MotoPool> = OnceLock::new();

fn pool() -> &'static MotoPool {
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let size = std::env::var("VA_MOTO_SERVERS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(cores)
            .clamp(1, 4);
        MotoPool {
            servers: (0..size).map(|_| OnceLock::new()).collect(),
            leases: Mutex::new(vec![0; size]),
        }
    })
}

/// A test's hold on one moto server of the pool; released on drop.
#[derive(Debug)]
pub struct MotoLease(usize);

impl Drop for MotoLease {
    fn drop(&mut self) {
        let mut leases = pool().leases.lock().unwrap_or_else(|e| e.into_inner());
        leases[self.0] = leases[self.0].saturating_sub(1);
    }
}

/// The server with the fewest leases (the lowest index on a tie), passing
/// over servers that failed to start while another may still serve; with
/// `lease`, counts the choice before the lock is released.
fn least_busy(lease: bool) -> usize {
    let pool = pool();
    let mut leases = pool.leases.lock().unwrap_or_else(|e| e.into_inner());
    let failed = |i: usize| matches!(pool.servers[i].get(), Some(Err(_)));
    let index = (0..pool.servers.len())
        .filter(|&i| !failed(i))
        .min_by_key(|&i| (leases[i], i))
        .unwrap_or(0);
    if lease {
        leases[index] += 1;
    }
    index
}

fn moto_at(index: usize) -> Result<Endpoint, HarnessError> {
    let slot = &pool().servers[index];
    let moto = slot.get_or_init(|| {
        let mut m = start_moto_with(&[]).map_err(|e| e.to_string())?;
        m.front = crate::iam::proxy::start(&m.url)?;
        Ok(Mutex::new(m))
    });
    match moto {
        Ok(m) => {
            let m = m.lock().unwrap_or_else(|e| e.into_inner());
            Ok(Endpoint::Moto {
                url: m.front.clone(),
                pid: m.child.id(),
            })
        }
        Err(e) => Err(HarnessError::Start(e.clone())),
    }
}

fn configured_endpoint() -> Option<Endpoint> {
    if std::env::var("VA_TEST_REAL_AWS").is_ok_and(|v| v == "1") {
        return Some(Endpoint::RealAws);
    }
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => {
            // Someone else's server: the enforcing double in front of it too.
            static FRONT: OnceLock<Result<String, String>> = OnceLock::new();
            match FRONT.get_or_init(|| crate::iam::proxy::start(&url)) {
                Ok(front) => Some(Endpoint::External { url: front.clone() }),
                Err(_) => Some(Endpoint::External { url }),
            }
        }
        _ => None,
    }
}

/// Whether the tests start moto themselves (no endpoint configured).
pub fn moto_is_ours() -> bool {
    configured_endpoint().is_none()
}

/// An endpoint for this test process: the least-busy moto of the pool,
/// started on first use, unless one is configured. Two calls may name
/// different servers: resources made on one are not on the other, so a test
/// keeps one config (`TestResources::config`) for all it makes.
pub fn endpoint() -> Result<Endpoint, HarnessError> {
    match configured_endpoint() {
        Some(ep) => Ok(ep),
        None => moto_at(least_busy(false)),
    }
}

/// Like `endpoint`, with a lease that steers later tests to other servers
/// while it is held (none for a configured endpoint).
pub fn leased_endpoint() -> Result<(Endpoint, Option<MotoLease>), HarnessError> {
    if let Some(ep) = configured_endpoint() {
        return Ok((ep, None));
    }
    let lease = MotoLease(least_busy(true));
    Ok((moto_at(lease.0)?, Some(lease)))
}

/// The build directory: `CARGO_TARGET_DIR`, else `target/` of the workspace.
pub fn build_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
}

/// Installs moto into `target/moto-venv-<version>` unless it is there.
pub fn ensure_moto_installed() -> Result<PathBuf, HarnessError> {
    ensure_venv(
        &format!("moto-venv-{MOTO_VERSION}-{}", MOTO_EXTRAS.replace(',', "-")),
        &format!("moto {MOTO_VERSION}"),
        &[&format!("moto[{MOTO_EXTRAS}]=={MOTO_VERSION}")],
    )
    .map_err(|e| match e {
        VenvError::NoPython(m) => HarnessError::NoPython(m),
        VenvError::Install(m) => HarnessError::Install(m),
    })
}

/// Why a virtualenv could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum VenvError {
    #[error(
        "python3 was not found on PATH ({0}); the test harness needs Python 3 with pip and venv"
    )]
    NoPython(String),
    #[error("{0}")]
    Install(String),
}

/// Installs a virtualenv `<build dir>/<dir_name>` with `pip install
/// <pip_args>` unless it is complete already; returns its `python`. The
/// environment is built beside its final place and renamed into it, so
/// concurrent test processes never see a half-built one. `what` names it in
/// errors.
pub fn ensure_venv(dir_name: &str, what: &str, pip_args: &[&str]) -> Result<PathBuf, VenvError> {
    // One installer at a time in this process (tests run concurrently);
    // other processes are kept apart by the unique temporary directory.
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let venv = build_dir().join(dir_name);
    let python = venv.join("bin").join("python");
    if python.exists() && venv.join(".installed").exists() {
        return Ok(python);
    }
    let version = Command::new("python3")
        .arg("--version")
        .output()
        .map_err(|e| VenvError::NoPython(e.to_string()))?;
    if !version.status.success() {
        return Err(VenvError::NoPython("`python3 --version` failed".into()));
    }
    let install = |m: String| VenvError::Install(format!("installing {what} failed: {m}"));
    std::fs::create_dir_all(build_dir()).map_err(|e| install(e.to_string()))?;
    let tmp = build_dir().join(format!(
        "{dir_name}.tmp-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    run(Command::new("python3").arg("-m").arg("venv").arg(&tmp)).map_err(|e| {
        install(format!(
            "python3 -m venv: {e} (on Debian: apt-get install python3-venv)"
        ))
    })?;
    run(Command::new(tmp.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(pip_args))
    .map_err(|e| install(format!("pip install: {e}")))?;
    std::fs::write(tmp.join(".installed"), what).map_err(|e| install(e.to_string()))?;
    if std::fs::rename(&tmp, &venv).is_err() {
        // Another process won the race; use theirs if it is complete.
        let _ = std::fs::remove_dir_all(&tmp);
        if !venv.join(".installed").exists() {
            return Err(install(format!(
                "could not move the virtualenv into {}",
                venv.display()
            )));
        }
    }
    Ok(python)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
    Err(tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
}

/// Python run by the moto child: exits when stdin closes (the parent is
/// gone), and fixes two DynamoDB emulation gaps (see the file).
const MOTO_LAUNCHER: &str = include_str!("moto_launcher.py");

/// A moto server of its own, outside the pool, with extra environment (the
/// launcher's switches); it stops when dropped.
pub struct SeparateMoto(MotoProcess);

impl std::fmt::Debug for SeparateMoto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SeparateMoto").field(&self.0.url).finish()
    }
}

impl SeparateMoto {
    /// Starts one with `env` set for it.
    pub fn start(env: &[(&str, &str)]) -> Result<Self, HarnessError> {
        start_moto_with(env).map(Self)
    }

    /// Its base URL on loopback.
    pub fn url(&self) -> &str {
        &self.0.url
    }
}

impl Drop for SeparateMoto {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}

fn start_moto_with(env: &[(&str, &str)]) -> Result<MotoProcess, HarnessError> {
    let python = ensure_moto_installed()?;
    let mut child = Command::new(&python)
        .args(["-c", MOTO_LAUNCHER])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| HarnessError::Start(format!("{}: {e}", python.display())))?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| HarnessError::Start("no stdin pipe".into()))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| HarnessError::Start("no stderr pipe".into()))?;
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads the bound port from moto's banner, then keeps draining its log so
    // the pipe never fills and blocks the server.
    std::thread::Builder::new()
        .name("moto-log".into())
        .spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = String::new();
            let mut sent = false;
            let mut early = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if !sent {
                    if let Some(pos) = line.find("http://127.0.0.1:") {
                        let port: String = line[pos + 17..]
                            .chars()
                            .take_while(char::is_ascii_digit)
                            .collect();
                        let _ = tx.send(Ok(port));
                        sent = true;
                    } else {
                        early.push_str(&line);
                    }
                }
                line.clear();
            }
            if !sent {
                let _ = tx.send(Err(early));
            }
        })
        .map_err(|e| HarnessError::Start(e.to_string()))?;
    let port = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(port)) => port,
        Ok(Err(log)) => return Err(HarnessError::Start(format!("moto exited: {log}"))),
        Err(_) => {
            let _ = child.kill();
            return Err(HarnessError::Start(
                "moto printed no address within 60 s".into(),
            ));
        }
    };
    let url = format!("http://127.0.0.1:{port}");
    wait_until_answers(&format!("127.0.0.1:{port}"), Duration::from_secs(30))
        .map_err(|e| HarnessError::Start(format!("moto at {url} did not answer: {e}")))?;
    Ok(MotoProcess {
        front: url.clone(),
        url,
        child,
        _stdin: stdin,
    })
}

fn wait_until_answers(addr: &str, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    let mut pause = Duration::from_millis(20);
    while Instant::now() < deadline {
        match probe(addr) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
    Err(last)
}

fn probe(addr: &str) -> Result<(), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).map_err(|e| e.to_string())?;
    if head.starts_with(b"HTTP/1.") {
        Ok(())
    } else {
        Err("not HTTP".into())
    }
}

/// An SDK configuration aimed at a test endpoint (see `endpoint`: a test
/// that calls this twice may get two servers, and takes no lease).
pub async fn sdk_config() -> Result<SdkConfig, HarnessError> {
    Ok(config_for(&endpoint()?).await)
}

async fn config_for(ep: &Endpoint) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(url) = ep.url() {
        loader = loader
            .endpoint_url(url)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                crate::iam::ADMINISTRATOR_KEY,
                "testing",
                None,
                None,
                "administrator",
            ));
    }
    loader.load().await
}

/// `config` signing with `access_key` (a principal of the enforcing double).
fn signing_as(config: &SdkConfig, access_key: &str) -> SdkConfig {
    config
        .to_builder()
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new(access_key, "testing", None, None, "va-iam"),
        ))
        .build()
}

/// A unique resource name, so concurrent tests and a shared real account never collide.
pub fn unique_name(kind: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("va-test-{kind}-{}", &id[..12])
}

/// The product's resources for one test: token table, analytics table,
/// tenant table, OAuth secret and dead-letter queue, named as one stack of
/// the template deploys them. Its clients sign as the harness's
/// administrator (set-up and assertions); `as_role` gives clients that sign
/// as one of the stack's roles, which the enforcing double authorizes
/// against the template's policies (`crate::iam`).
#[derive(Debug, Clone)]
pub struct TestResources {
    /// The administrator's configuration.
    pub config: SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The analytics store's client, its writes metered.
    pub analytics: aws_sdk_dynamodb::Client,
    pub meter: crate::metering::Meter,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// The stack's name: queues and org secrets are named after it.
    pub stack_name: String,
    /// The dead-letter queue's URL (`<stack>-dead-letters`).
    pub dead_letter_queue_url: String,
    pub token_table: String,
    pub analytics_table: String,
    /// The tenant registry (MultiOrg).
    pub tenant_table: String,
    /// The SingleOrg secret's name.
    pub secret_id: String,
    /// Its ARN (the template's `GenesysSecretArn`).
    pub secret_arn: String,
    /// The deployment the enforcing double authorizes against; `None` on
    /// real AWS, where the stack's own roles would be used.
    pub stack: Option<Arc<crate::iam::StackBinding>>,
    /// The moto server these live on, held while any clone lives.
    pub lease: Option<Arc<MotoLease>>,
}

impl TestResources {
    /// Creates uniquely named tables and a secret holding `{"clientId","clientSecret"}`.
    pub async fn create(client_id: &str, client_secret: &str) -> Result<Self, HarnessError> {
        let (ep, lease) = leased_endpoint()?;
        let config = config_for(&ep).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let secrets = aws_sdk_secretsmanager::Client::new(&config);
        let stack_name = unique_name("stack");
        let token_table = unique_name("tokens");
        let analytics_table = unique_name("analytics");
        let tenant_table = unique_name("tenants");
        create_table(&dynamodb, &token_table, false).await?;
        create_analytics_table(&dynamodb, &analytics_table).await?;
        create_table(&dynamodb, &tenant_table, false).await?;
        let secret_id = unique_name("genesys-oauth");
        let value =
            serde_json::json!({"clientId": client_id, "clientSecret": client_secret}).to_string();
        let secret_arn = secrets
            .create_secret()
            .name(&secret_id)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| {
                HarnessError::Aws(format!(
                    "create secret: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                ))
            })?
            .arn()
            .unwrap_or_default()
            .to_string();
        let sqs = aws_sdk_sqs::Client::new(&config);
        let dead_letter_queue_url =
            create_queue(&sqs, &format!("{stack_name}-dead-letters"), &[]).await?;
        let meter = crate::metering::Meter::new();
        let analytics = meter.client(&config);
        let mut res = Self {
            config,
            dynamodb,
            analytics,
            meter,
            secrets,
            sqs,
            stack_name,
            dead_letter_queue_url,
            token_table,
            analytics_table,
            tenant_table,
            secret_id,
            secret_arn,
            stack: None,
            lease: lease.map(Arc::new),
        };
        if ep.url().is_some() {
            res.stack = Some(res.bind(crate::iam::Shape::default())?);
        }
        Ok(res)
    }

    /// The names the template's policies are resolved with.
    fn names(&self) -> crate::iam::stack::Resources {
        crate::iam::stack::Resources {
            stack_name: self.stack_name.clone(),
            token_table: self.token_table.clone(),
            analytics_table: self.analytics_table.clone(),
            tenant_table: self.tenant_table.clone(),
            secret_arn: self.secret_arn.clone(),
            dead_letter_queue_url: self.dead_letter_queue_url.clone(),
            event_queue_url: self.event_queue_url(),
        }
    }

    fn bind(
        &self,
        shape: crate::iam::Shape,
    ) -> Result<Arc<crate::iam::StackBinding>, HarnessError> {
        crate::iam::StackBinding::new(&self.names(), shape)
            .map_err(|e| HarnessError::Aws(format!("binding the template: {e}")))
    }

    /// The same resources deployed with other template choices (tenancy,
    /// delivery mode, secret key): the roles' policies are resolved anew.
    pub fn deployed_as(&self, shape: crate::iam::Shape) -> Result<Self, HarnessError> {
        let mut res = self.clone();
        if self.stack.is_some() {
            res.stack = Some(self.bind(shape)?);
        }
        Ok(res)
    }

    /// The event queue's URL (`<stack>-events`; made by `create_event_queue`).
    pub fn event_queue_url(&self) -> String {
        let base = self
            .dead_letter_queue_url
            .trim_end_matches("-dead-letters")
            .to_string();
        format!("{base}-events")
    }

    /// Makes the Batch mode's event queue, redriving to the dead-letter
    /// queue after 5 receives as the template's does.
    pub async fn create_event_queue(&self) -> Result<String, HarnessError> {
        let dlq_arn = crate::iam::request::queue_arn(&self.dead_letter_queue_url);
        let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5});
        create_queue(
            &self.sqs,
            &format!("{}-events", self.stack_name),
            &[
                (
                    aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
                    redrive.to_string(),
                ),
                (
                    aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                    "180".into(),
                ),
            ],
        )
        .await
    }

    /// Clients that sign as `role` of this stack, as the function's Lambda
    /// does (its execution role's session named after the function). On
    /// real AWS (no double) the same clients as these.
    pub fn as_role(&self, role: crate::iam::Role) -> Self {
        let Some(stack) = &self.stack else {
            return self.clone();
        };
        let session = format!("{}-{}", self.stack_name, role.logical_id());
        let key = crate::iam::authorize::register(crate::iam::Caller {
            stack: stack.clone(),
            who: crate::iam::Who::Role {
                role,
                session,
                tags: Default::default(),
            },
        });
        self.signing(&key)
    }

    /// Clients that sign as an AWS service acting for `source_arn` (for
    /// example EventBridge delivering a rule's events to its target).
    pub fn as_service(&self, service: &str, source_arn: &str) -> Self {
        let Some(stack) = &self.stack else {
            return self.clone();
        };
        let key = crate::iam::authorize::register(crate::iam::Caller {
            stack: stack.clone(),
            who: crate::iam::Who::Service {
                name: service.to_string(),
                source_arn: source_arn.to_string(),
            },
        });
        self.signing(&key)
    }

    fn signing(&self, key: &str) -> Self {
        let config = signing_as(&self.config, key);
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            analytics: self.meter.client(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            config,
            ..self.clone()
        }
    }

    /// The calls the double refused this stack's principals so far.
    pub fn denials(&self) -> Vec<crate::iam::Denial> {
        self.stack.as_ref().map(|s| s.denials()).unwrap_or_default()
    }

    /// The same resources through clients that retry as the SDK's standard
    /// mode does (3 attempts) with millisecond pauses: for outage tests, where
    /// the SDK's backoffs of up to seconds per failed request are only wall
    /// time (`testkit::product::fast_retries` does the same for Genesys).
    pub fn with_fast_retries(&self) -> Self {
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(5))
            .with_max_backoff(Duration::from_millis(20));
        let config = self.config.to_builder().retry_config(retry).build();
        // The SDK shares one retry budget per partition across the process;
        // these clients spend theirs fast, so they get one of their own.
        let partition =
            aws_sdk_dynamodb::config::retry::RetryPartition::new("va-test-fast-retries");
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&config)
                .retry_partition(partition)
                .build(),
        );
        Self {
            dynamodb,
            analytics: self.meter.client(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            config,
            ..self.clone()
        }
    }

    /// Deletes exactly what `create` made.
    pub async fn delete(&self) -> Result<(), HarnessError> {
        for t in [&self.token_table, &self.analytics_table, &self.tenant_table] {
            self.dynamodb
                .delete_table()
                .table_name(t)
                .send()
                .await
                .map_err(|e| HarnessError::Aws(format!("delete table {t}: {e}")))?;
        }
        self.secrets
            .delete_secret()
            .secret_id(&self.secret_id)
            .force_delete_without_recovery(true)
            .send()
            .await
            .map_err(|e| HarnessError::Aws(format!("delete secret: {e}")))?;
        self.sqs
            .delete_queue()
            .queue_url(&self.dead_letter_queue_url)
            .send()
            .await
            .map_err(|e| HarnessError::Aws(format!("delete queue: {e}")))?;
        Ok(())
    }
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(aws_sdk_sqs::types::QueueAttributeName, String)],
) -> Result<String, HarnessError> {
    let mut request = sqs.create_queue().queue_name(name);
    for (k, v) in attributes {
        request = request.attributes(k.clone(), v);
    }
    request
        .send()
        .await
        .map_err(|e| {
            HarnessError::Aws(format!(
                "create queue {name}: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            ))
        })
        .map(|o| o.queue_url().unwrap_or_default().to_string())
}

/// On-demand table keyed by `pk` (and `sk` when `sorted`), then waits until it is active.
pub async fn create_table(
    ddb: &aws_sdk_dynamodb::Client,
    name: &str,
    sorted: bool,
) -> Result<(), HarnessError> {
    create_table_with(ddb, name, sorted, None).await
}

/// The analytics table as the template makes it: `pk`/`sk` and the sparse,
/// keys-only index `OrgItems` on `org_shard` (a template test holds the two
/// equal).
pub async fn create_analytics_table(
    ddb: &aws_sdk_dynamodb::Client,
    name: &str,
) -> Result<(), HarnessError> {
    use va_analytics::org_items::{ORG_ITEMS_INDEX, ORG_SHARD};
    let index = aws_sdk_dynamodb::types::GlobalSecondaryIndex::builder()
        .index_name(ORG_ITEMS_INDEX)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(ORG_SHARD)
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| HarnessError::Aws(e.to_string()))?,
        )
        .projection(
            aws_sdk_dynamodb::types::Projection::builder()
                .projection_type(aws_sdk_dynamodb::types::ProjectionType::KeysOnly)
                .build(),
        )
        .build()
        .map_err(|e| HarnessError::Aws(e.to_string()))?;
    create_table_with(ddb, name, true, Some(index)).await
}

async fn create_table_with(
    ddb: &aws_sdk_dynamodb::Client,
    name: &str,
    sorted: bool,
    index: Option<aws_sdk_dynamodb::types::GlobalSecondaryIndex>,
) -> Result<(), HarnessError> {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
    };
    let mut req = ddb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk").map_err(|e| HarnessError::Aws(e.to_string()))?)
        .key_schema(key("pk", KeyType::Hash).map_err(|e| HarnessError::Aws(e.to_string()))?);
    if sorted {
        req = req
            .attribute_definitions(attr("sk").map_err(|e| HarnessError::Aws(e.to_string()))?)
            .key_schema(key("sk", KeyType::Range).map_err(|e| HarnessError::Aws(e.to_string()))?);
    }
    if let Some(index) = index {
        for k in index.key_schema() {
            req = req.attribute_definitions(
                attr(k.attribute_name()).map_err(|e| HarnessError::Aws(e.to_string()))?,
            );
        }
        req = req.global_secondary_indexes(index);
    }
    req.send().await.map_err(|e| {
        HarnessError::Aws(format!(
            "create table {name}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(e)
        ))
    })?;
    ddb.wait_until_table_exists()
        .table_name(name)
        .wait(Duration::from_secs(300))
        .await
        .map_err(|e| HarnessError::Aws(format!("wait for table {name}: {e}")))?;
    Ok(())
}

/// The DynamoDB double's switches for one table (see `moto_launcher.py`).
/// They are tags on the table; real DynamoDB ignores them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DoubleSwitches {
    /// How long a transaction holds its items before it commits.
    pub tx_hold_ms: u64,
    /// Write units a second one item takes before it is throttled.
    pub item_wcu_per_s: u32,
    /// Whether transactions conflict at all.
    pub conflicts: bool,
    /// Every read and write on the table fails with a 500.
    pub unavailable: bool,
}

impl Default for DoubleSwitches {
    fn default() -> Self {
        Self {
            tx_hold_ms: 0,
            item_wcu_per_s: 1_000,
            conflicts: true,
            unavailable: false,
        }
    }
}

/// Sets the double's switches on `table`.
pub async fn set_double(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    switches: DoubleSwitches,
) -> Result<(), HarnessError> {
    let arn = ddb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| HarnessError::Aws(format!("describe {table}: {e}")))?
        .table()
        .and_then(|t| t.table_arn())
        .map(str::to_string)
        .ok_or_else(|| HarnessError::Aws(format!("{table} has no ARN")))?;
    let tag = |k: &str, v: String| {
        aws_sdk_dynamodb::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
            .map_err(|e| HarnessError::Aws(e.to_string()))
    };
    ddb.tag_resource()
        .resource_arn(arn)
        .tags(tag(
            "va-double:tx-hold-ms",
            switches.tx_hold_ms.to_string(),
        )?)
        .tags(tag(
            "va-double:item-wcu-per-s",
            switches.item_wcu_per_s.to_string(),
        )?)
        .tags(tag(
            "va-double:conflicts",
            if switches.conflicts { "on" } else { "off" }.into(),
        )?)
        .tags(tag(
            "va-double:unavailable",
            if switches.unavailable { "on" } else { "off" }.into(),
        )?)
        .send()
        .await
        .map_err(|e| HarnessError::Aws(format!("tag {table}: {e}")))?;
    Ok(())
}
