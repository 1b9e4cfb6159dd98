//! Many orgs end to end: one deployment (one token table, one analytics
//! table) serving several Genesys Cloud orgs, each on its own simulator (its
//! own region), with its own traffic, token lifetime and faults. The
//! product's multi-org parts run as their Lambdas wire them: the refresher's
//! [`OrgFleet`], the sweeper's [`OrgSweeps`] and conversation-events in
//! registry mode, routing each event by its `source`. Each org's store is
//! then checked against its own ground truth.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use token_broker::fleet::OrgFleet;
use token_broker::{BrokerConfig, SlotOutcome, Tenant, TenantRegistry};
use va_analytics::{AnalyticsStore, Applied, KpiConfig};
use va_enrichment::{OrgSweeps, SweepConfig};

use crate::iam::Role;
use va_handler::{EventHandler, HandleError, OrgDirectory, Tenancy};

use crate::aws::TestResources;
use crate::replay::{self, Delivery, Repeats};
use crate::sim::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Policies, SimClock, SimConfig, Simulator,
};
use crate::traffic::{self, Traffic, TrafficConfig};

/// One org of a run.
#[derive(Debug, Clone)]
pub struct OrgSpec {
    /// Its Genesys Cloud org id (a UUID).
    pub org_id: String,
    /// A name for people.
    pub name: String,
    /// Its region (one simulator each; the name is what the registry holds).
    pub region: String,
    /// `expires_in` of its tokens, seconds.
    pub token_lifetime_s: u64,
    /// Its secret holds a client secret Genesys Cloud rejects.
    pub wrong_secret: bool,
    /// Its tokens are revoked every this many simulated minutes.
    pub revoke_every_min: Option<u32>,
    /// Traffic seed.
    pub seed: u64,
}

impl OrgSpec {
    /// The `n`th org of `--orgs N`: regions and token lifetimes vary; the
    /// second org (of three or more) has a wrong secret and the third is
    /// revoked every 10 minutes, when `faults` is set.
    pub fn nth(n: u32, faults: bool) -> Self {
        const REGIONS: [&str; 4] = ["us-east-1", "eu-west-1", "ap-southeast-2", "eu-central-1"];
        const LIFETIMES: [u64; 4] = [86_400, 3_600, 900, 7_200];
        let i = n as usize;
        Self {
            org_id: format!("{:08x}-0000-4000-8000-{:012x}", n + 1, n + 1),
            name: format!("Org {}", n + 1),
            region: REGIONS[i % REGIONS.len()].to_string(),
            token_lifetime_s: LIFETIMES[i % LIFETIMES.len()],
            wrong_secret: faults && n == 1,
            revoke_every_min: (faults && n == 2).then_some(10),
            seed: 1 + u64::from(n),
        }
    }
}

/// How the orgs are driven.
#[derive(Debug, Clone)]
pub struct OrgRunOptions {
    /// Bot sessions per minute, per org.
    pub sessions_per_minute: u32,
    /// Simulated minutes of traffic.
    pub minutes: u32,
    /// Duplicate and resent deliveries.
    pub repeats: Repeats,
    /// Simulated time per step.
    pub step: Duration,
    /// Invocations in flight at once (the handler fleet's concurrency).
    pub concurrency: usize,
    /// Start of the traffic, epoch ms.
    pub start_ms: i64,
}

impl Default for OrgRunOptions {
    fn default() -> Self {
        Self {
            sessions_per_minute: 20,
            minutes: 30,
            repeats: Repeats {
                duplicates: 0.02,
                resends: 0.01,
            },
            step: Duration::from_secs(10),
            concurrency: 32,
            start_ms: 1_795_187_000_000,
        }
    }
}

/// One org's figures after a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrgReport {
    /// The org.
    pub org_id: String,
    /// Its name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// Bot sessions in its traffic.
    pub sessions: u64,
    /// Events in its traffic.
    pub events: u64,
    /// Deliveries (repeats included).
    pub deliveries: u64,
    /// Deliveries recognised as already counted.
    pub duplicates: u64,
    /// Token requests its simulator saw.
    pub token_requests: u64,
    /// 401s its simulator answered.
    pub unauthorized: u64,
    /// Its tokens revoked by the fault plan.
    pub revocations: u64,
    /// Refresher ticks that reported a failure for it.
    pub failed_ticks: u64,
    /// The last failure the refresher reported for it (never a secret).
    pub last_failure: Option<String>,
    /// Its events rejected (none expected: it is registered and enabled).
    pub rejected: u64,
    /// Its events that failed every attempt.
    pub dead_lettered: u64,
    /// Its store equals its ground truth, intents included.
    pub exactly_once: bool,
    /// Its store equals its ground truth apart from intents (what counting
    /// alone decides; intents need a token).
    pub counts_exact: bool,
    /// Every ended bot session was enriched by the end.
    pub enrichment_complete: bool,
    /// The first differences, if any.
    pub differences: Vec<String>,
}

/// An org's world: its simulator, traffic and registry item.
struct World {
    spec: OrgSpec,
    sim: Simulator,
    traffic: Traffic,
    tenant: Tenant,
    last_revoke: i64,
    revocations: u64,
    failed_ticks: u64,
    last_failure: Option<String>,
}

fn tally_key(raw: &Value) -> String {
    raw.get("source")
        .and_then(Value::as_str)
        .and_then(|s| s.strip_prefix(va_events::PARTNER_SOURCE_PREFIX))
        .and_then(|s| s.split('/').next())
        .unwrap_or_default()
        .to_string()
}

#[derive(Default)]
struct Tally {
    deliveries: u64,
    duplicates: u64,
    rejected: u64,
    dead_lettered: u64,
}

/// `res` deployed with `Tenancy=MultiOrg`.
pub fn multi_org(res: &TestResources) -> Result<TestResources, String> {
    // Already so: the same deployment (its policies and denials).
    if res
        .stack
        .as_ref()
        .is_none_or(|s| s.shape.tenancy == crate::iam::Tenancy::MultiOrg)
    {
        return Ok(res.clone());
    }
    res.deployed_as(crate::iam::Shape {
        tenancy: crate::iam::Tenancy::MultiOrg,
        ..crate::iam::Shape::default()
    })
    .map_err(|e| e.to_string())
}

/// Where an org's OAuth client secret lives: `<stack>/org/<orgId>`, the
/// path the template's functions may read (`va-admin org add` makes it).
pub fn org_secret_name(res: &TestResources, org_id: &str) -> String {
    format!("{}/org/{org_id}", res.stack_name)
}

/// The operator stores an org's OAuth client (the AWS CLI step before
/// `va-admin org add`) where the functions may read it; returns its ARN.
pub async fn create_org_secret(
    res: &TestResources,
    org_id: &str,
    client_secret: &str,
) -> Result<String, String> {
    let operator = multi_org(res)?.as_role(Role::Operator);
    operator
        .secrets
        .create_secret()
        .name(org_secret_name(res, org_id))
        .secret_string(
            serde_json::json!({"clientId": DEFAULT_CLIENT_ID, "clientSecret": client_secret})
                .to_string(),
        )
        .send()
        .await
        .map_err(|e| format!("secret: {e}"))
        .map(|o| o.arn().unwrap_or_default().to_string())
}

/// conversation-events' handler with many orgs: each event routed by the
/// tenant registry, read and written as its role.
pub fn org_handler(res: &TestResources, clock: Arc<dyn lambda_support::Clock>) -> EventHandler {
    let role = res.as_role(Role::ConversationEvents);
    let directory = TenantRegistry::new(role.dynamodb.clone(), res.tenant_table.clone());
    EventHandler::new(
        AnalyticsStore::new(role.analytics.clone(), res.analytics_table.clone()),
        KpiConfig::default(),
        clock.clone(),
    )
    .with_tenancy(Tenancy::Registry(Arc::new(OrgDirectory::new(
        directory, clock,
    ))))
}

/// The tenant registry as the operator keeps it (`va-admin org`).
pub fn operator_registry(res: &TestResources) -> Result<TenantRegistry, String> {
    let operator = multi_org(res)?.as_role(Role::Operator);
    Ok(TenantRegistry::new(
        operator.dynamodb.clone(),
        res.tenant_table.clone(),
    ))
}

/// An org fleet whose AWS calls `res`'s clients sign.
pub fn org_fleet(res: &TestResources, clock: Arc<dyn lambda_support::Clock>) -> OrgFleet {
    OrgFleet::new(
        res.dynamodb.clone(),
        res.secrets.clone(),
        res.token_table.clone(),
        clock,
        BrokerConfig::default(),
        crate::product::fast_retries(),
        Duration::from_secs(300),
        true,
    )
}

/// The org's partner bus and its rule `<stack>-org-<key>`, as the partner
/// and `infra/org.yaml` make them, delivering to a queue of its own (the
/// handler's place); returns (bus, queue URL).
pub async fn wire_org_bus(
    res: &TestResources,
    org: &str,
    key: &str,
) -> Result<(String, String), String> {
    let events = aws_sdk_eventbridge::Client::new(&res.config);
    let source = format!("aws.partner/genesys.com/cloud/{org}/va");
    let partner = aws_sdk_eventbridge::Client::new(&res.config);
    partner
        .create_partner_event_source()
        .name(&source)
        .account("123456789012")
        .send()
        .await
        .map_err(|e| format!("partner source: {e}"))?;
    let bus = events
        .create_event_bus()
        .name(&source)
        .event_source_name(&source)
        .send()
        .await;
    // One bus per org and account: another deployment on the same server
    // (the least-privilege runs) may have associated it already.
    if let Err(e) = bus {
        use aws_sdk_eventbridge::error::ProvideErrorMetadata;
        if e.code() != Some("ResourceAlreadyExistsException") {
            return Err(format!(
                "bus: {}",
                aws_sdk_eventbridge::error::DisplayErrorContext(e)
            ));
        }
    }
    let queue = res
        .sqs
        .create_queue()
        .queue_name(crate::aws::unique_name(key))
        .send()
        .await
        .map_err(|e| format!("queue: {e}"))?
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let arn_name = aws_sdk_sqs::types::QueueAttributeName::QueueArn;
    let queue_arn = res
        .sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(arn_name.clone())
        .send()
        .await
        .map_err(|e| format!("attributes: {e}"))?
        .attributes()
        .and_then(|a| a.get(&arn_name).cloned())
        .ok_or("no queue arn")?;
    let rule = format!("{}-org-{key}", res.stack_name);
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&source)
        .event_pattern(serde_json::json!({ "source": [source] }).to_string())
        .send()
        .await
        .map_err(|e| format!("rule: {e}"))?;
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&source)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("events")
                .arn(queue_arn)
                .build()
                .map_err(|e| format!("target: {e}"))?,
        )
        .send()
        .await
        .map_err(|e| format!("target: {e}"))?;
    Ok((source, queue))
}

/// Runs `specs` together in `res` (one deployment), on one simulated clock.
pub async fn run(
    res: &TestResources,
    specs: &[OrgSpec],
    opts: &OrgRunOptions,
) -> Result<Vec<OrgReport>, String> {
    let res = &multi_org(res)?;
    let clock = Arc::new(SimClock::frozen_at(opts.start_ms));
    // The operator's registry (`va-admin org add`), and each function's own below.
    let registry = operator_registry(res)?;
    let mut worlds = Vec::new();
    let mut deliveries: Vec<Delivery> = Vec::new();
    for spec in specs {
        let sim = Simulator::start(SimConfig {
            policies: Policies {
                token_lifetime_s: spec.token_lifetime_s,
                ..Policies::default()
            },
            clock: clock.clone(),
            ..SimConfig::default()
        })
        .await
        .map_err(|e| format!("simulator: {e}"))?;
        let traffic = traffic::generate(&TrafficConfig {
            seed: spec.seed,
            sessions_per_minute: opts.sessions_per_minute,
            minutes: opts.minutes,
            start_ms: opts.start_ms,
            org_id: spec.org_id.clone(),
            ..TrafficConfig::default()
        });
        sim.register_conversations(traffic.sim_conversations());
        let secret = if spec.wrong_secret {
            "not-the-secret"
        } else {
            DEFAULT_CLIENT_SECRET
        };
        let arn = create_org_secret(res, &spec.org_id, secret).await?;
        let tenant = Tenant {
            org_id: spec.org_id.clone(),
            region: spec.region.clone(),
            secret_arn: arn,
            pool_size: 1,
            enabled: true,
            display_name: spec.name.clone(),
            base_url: Some(sim.base_url()),
            offboarded: false,
        };
        registry.put(&tenant).await.map_err(|e| e.to_string())?;
        deliveries.extend(replay::deliveries(&traffic, opts.repeats, spec.seed));
        worlds.push(World {
            spec: spec.clone(),
            sim,
            traffic,
            tenant,
            last_revoke: opts.start_ms,
            revocations: 0,
            failed_ticks: 0,
            last_failure: None,
        });
    }
    deliveries.sort_by_key(|d| d.at_ms);
    let tenants: Vec<Tenant> = worlds.iter().map(|w| w.tenant.clone()).collect();

    // The product's parts, wired as their Lambdas wire them, each signing
    // as its own role.
    let fleet = Arc::new(org_fleet(&res.as_role(Role::TokenRefresher), clock.clone()));
    let sweeper = res.as_role(Role::EnrichmentSweeper);
    let sweeps = OrgSweeps::new(
        Arc::new(org_fleet(&sweeper, clock.clone())),
        AnalyticsStore::new(sweeper.analytics.clone(), res.analytics_table.clone()),
        clock.clone(),
        SweepConfig::default(),
    );
    // The run's own reads (reports), as the administrator.
    let store = AnalyticsStore::new(res.analytics.clone(), res.analytics_table.clone());
    let handler = Arc::new(org_handler(res, clock.clone()));

    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut pending: std::collections::VecDeque<(Delivery, u32)> =
        deliveries.into_iter().map(|d| (d, 1)).collect();
    let mut retry: Vec<(Delivery, u32)> = Vec::new();
    let step = i64::try_from(opts.step.as_millis())
        .unwrap_or(10_000)
        .max(1_000);
    let mut now = opts.start_ms;
    let mut last_minute: Option<i64> = None;
    let drain_until = opts.start_ms + i64::from(opts.minutes) * 60_000 + 6 * 3_600_000;
    let healthy: Vec<Tenant> = worlds
        .iter()
        .filter(|w| !w.spec.wrong_secret)
        .map(|w| w.tenant.clone())
        .collect();
    loop {
        clock.advance_to(now);
        // Faults: revocations per org.
        for w in &mut worlds {
            if let Some(every) = w.spec.revoke_every_min
                && now - w.last_revoke >= i64::from(every.max(1)) * 60_000
            {
                w.last_revoke = now;
                w.revocations += 1;
                w.sim.revoke_all();
            }
        }
        // The schedules: refresher and sweeper once a minute.
        let minute = now.div_euclid(60_000);
        if last_minute != Some(minute) {
            last_minute = Some(minute);
            for tick in fleet.tick_all(&tenants, 16, Duration::from_secs(90)).await {
                let failure = match &tick.result {
                    Err(e) => Some(e.clone()),
                    Ok(r) => r.slots.iter().find_map(|s| match &s.outcome {
                        SlotOutcome::Failed { error } => Some(error.clone()),
                        _ => None,
                    }),
                };
                if let Some(f) = failure
                    && let Some(w) = worlds.iter_mut().find(|w| w.spec.org_id == tick.org_id)
                {
                    w.failed_ticks += 1;
                    w.last_failure = Some(f);
                }
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            for s in sweeps.sweep_all(&tenants, 4, deadline).await {
                if let Err(e) = s.result {
                    tracing::warn!(org = %s.org_id, error = %e, "sweep failed");
                }
            }
        }
        // This step's deliveries (and the last step's failures).
        let mut batch: Vec<(Delivery, u32)> = std::mem::take(&mut retry);
        while let Some((d, attempt)) = pending.pop_front() {
            if d.at_ms > now {
                pending.push_front((d, attempt));
                break;
            }
            batch.push((d, attempt));
        }
        let results: Vec<((Delivery, u32), Result<Applied, HandleError>)> =
            futures::stream::iter(batch.into_iter().map(|(d, attempt)| {
                let handler = handler.clone();
                async move {
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                    let r = handler.handle(&d.event, deadline).await.map(|h| h.applied);
                    ((d, attempt), r)
                }
            }))
            .buffer_unordered(opts.concurrency.max(1))
            .collect()
            .await;
        for ((d, attempt), r) in results {
            let t = tally.entry(tally_key(&d.event)).or_default();
            if attempt == 1 {
                t.deliveries += 1;
            }
            match r {
                Ok(Applied::Duplicate) => t.duplicates += 1,
                Ok(Applied::Processed) => {}
                // No org of a run is offboarded: a dropped event is lost.
                Ok(Applied::Dropped) => t.rejected += 1,
                Err(HandleError::Rejected(_)) => t.rejected += 1,
                Err(_) if attempt < 3 => retry.push((d, attempt + 1)),
                Err(_) => t.dead_lettered += 1,
            }
        }
        let delivered = pending.is_empty() && retry.is_empty();
        if delivered
            && (now >= drain_until
                || !sweeps
                    .has_pending(&healthy)
                    .await
                    .map_err(|e| e.to_string())?)
        {
            break;
        }
        now += if delivered { 60_000 } else { step };
    }

    let mut reports = Vec::new();
    for w in &worlds {
        let org_store = store.for_org(&w.spec.org_id);
        let end = w.traffic.events.last().map(|e| e.at_ms).unwrap_or(0) + 3_600_000;
        let diffs = replay::compare(&org_store, &w.traffic.truth, 0, end).await;
        let base = replay::compare_base(&org_store, &w.traffic.truth, 0, end).await;
        let pending = sweeps
            .has_pending(std::slice::from_ref(&w.tenant))
            .await
            .map_err(|e| e.to_string())?;
        let c = w.sim.counters();
        let t = tally.remove(&w.spec.org_id).unwrap_or_default();
        reports.push(OrgReport {
            org_id: w.spec.org_id.clone(),
            name: w.spec.name.clone(),
            region: w.spec.region.clone(),
            sessions: w.traffic.truth.bot_sessions,
            events: w.traffic.truth.events,
            deliveries: t.deliveries,
            duplicates: t.duplicates,
            token_requests: c.token_requests,
            unauthorized: c.unauthorized_total,
            revocations: w.revocations,
            failed_ticks: w.failed_ticks,
            last_failure: w.last_failure.clone(),
            rejected: t.rejected,
            dead_lettered: t.dead_lettered,
            exactly_once: diffs.is_empty(),
            counts_exact: base.is_empty(),
            enrichment_complete: !pending,
            differences: diffs.into_iter().take(3).collect(),
        });
    }
    Ok(reports)
}

/// One table row per org.
pub fn table(reports: &[OrgReport]) -> String {
    let mut out = String::from(
        "| org | region | sessions | events | deliveries | duplicates | token requests | 401s | revocations | failed ticks | rejected | DLQ | counts exact | exactly once (with intents) |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in reports {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.region,
            r.sessions,
            r.events,
            r.deliveries,
            r.duplicates,
            r.token_requests,
            r.unauthorized,
            r.revocations,
            r.failed_ticks,
            r.rejected,
            r.dead_lettered,
            if r.counts_exact { "pass" } else { "FAIL" },
            if r.exactly_once && r.enrichment_complete {
                "pass"
            } else {
                "no"
            },
        ));
    }
    out
}

/// A viewer the local dashboard was given.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// User name.
    pub username: String,
    /// Password (moto's Cognito, this run only).
    pub password: String,
    /// What they may see.
    pub sees: String,
}

/// Serves the dashboard of a multi-org run on `addr` (port 0 picks one),
/// with a viewer of every org and one viewer per org.
pub async fn serve_dashboard(
    res: &TestResources,
    specs: &[OrgSpec],
    opts: &OrgRunOptions,
    addr: std::net::SocketAddr,
) -> Result<
    (
        std::net::SocketAddr,
        Vec<Viewer>,
        tokio::task::JoinHandle<()>,
    ),
    String,
> {
    let sign_in = crate::sign_in::LocalSignIn::create(&res.config)
        .await
        .map_err(|e| e.to_string())?;
    let groups: Vec<String> = specs.iter().map(|s| format!("org-{}", s.org_id)).collect();
    let all: Vec<&str> = groups.iter().map(String::as_str).collect();
    let mut viewers = Vec::new();
    let admin = sign_in
        .add_viewer("all-orgs", &all)
        .await
        .map_err(|e| e.to_string())?;
    viewers.push(Viewer {
        username: admin.username,
        password: admin.password,
        sees: "every org (pick one at the top)".into(),
    });
    for (spec, group) in specs.iter().zip(&groups) {
        let v = sign_in
            .add_viewer(
                &format!("viewer-{}", spec.org_id.get(..8).unwrap_or("org")),
                &[group],
            )
            .await
            .map_err(|e| e.to_string())?;
        viewers.push(Viewer {
            username: v.username,
            password: v.password,
            sees: format!("{} only", spec.name),
        });
    }
    let api = Arc::new(crate::product::dashboard(
        &multi_org(res)?,
        Arc::new(SimClock::frozen_at(
            opts.start_ms + i64::from(opts.minutes) * 60_000,
        )),
        1,
        va_analytics::dashboard::auth::Verifier::new(sign_in.auth.clone()),
    ));
    let (bound, server) = crate::stack::serve_api(api, addr)
        .await
        .map_err(|e| format!("dashboard server: {e}"))?;
    Ok((bound, viewers, server))
}
