//! The permission scenarios: every path each function takes in AWS, run
//! under its role against a fresh deployment of one shape (tenancy and
//! delivery mode). With the template as written they meet no denial; the
//! least-privilege check (`bin/least-privilege.rs`) removes one statement
//! or action at a time and expects a scenario to meet `AccessDenied`.
//!
//! Paths: the refresher's tick (the registry's scan with many orgs); events
//! on time, late (a dirty mark), duplicated and malformed (a dead letter),
//! per event or through the encrypted queue (EventBridge's delivery and the
//! mapping's poll); the sweeper's enrichment, its give-ups, a dead token's
//! single-flight recovery, flow names and the roll-up; the dashboard's
//! data, token health and orgs, each org through the tagged reader.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use token_broker::{BrokerConfig, Tenant, TenantRegistry};
use va_analytics::AnalyticsStore;
use va_enrichment::{OrgSweeps, SweepConfig};
use va_handler::ConversationEvents;

use crate::aws::TestResources;
use crate::iam::{Delivery, Role, Shape, StackBinding, Tenancy};
use crate::sim::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimClock, SimConfig, Simulator};

/// The shapes the scenarios deploy.
pub const SHAPES: [Shape; 3] = [
    Shape {
        tenancy: Tenancy::SingleOrg,
        delivery: Delivery::PerEvent,
        secret_key: true,
    },
    Shape {
        tenancy: Tenancy::SingleOrg,
        delivery: Delivery::Batch,
        secret_key: false,
    },
    Shape {
        tenancy: Tenancy::MultiOrg,
        delivery: Delivery::Batch,
        secret_key: false,
    },
];

const START_MS: i64 = 1_795_187_000_000;
const ORG: &str = "0c000000-0000-4000-8000-00000000000c";

fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(60)
}

/// Runs every path of every function of `shape`, after `tweak` has changed
/// the deployment's policies; returns the resources (their denials).
///
/// The paths run in order (refresher, events, sweeper, dashboard) and stop
/// after `upto`'s: later ones cannot show that role's denials.
pub async fn exercise(
    shape: Shape,
    tweak: &(dyn Fn(&StackBinding) + Sync),
    upto: Role,
) -> Result<TestResources, String> {
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .map_err(|e| e.to_string())?
        .deployed_as(shape)
        .map_err(|e| e.to_string())?;
    if let Some(stack) = &res.stack {
        tweak(stack);
    }
    let clock = Arc::new(SimClock::frozen_at(START_MS));
    let sim = Simulator::start(SimConfig {
        clock: clock.clone(),
        ..SimConfig::default()
    })
    .await
    .map_err(|e| format!("simulator: {e}"))?;
    let multi = shape.tenancy == Tenancy::MultiOrg;
    let traffic = crate::traffic::generate(&crate::traffic::TrafficConfig {
        minutes: 2,
        sessions_per_minute: 4,
        start_ms: START_MS,
        org_id: if multi {
            ORG.into()
        } else {
            crate::traffic::TrafficConfig::default().org_id
        },
        ..crate::traffic::TrafficConfig::default()
    });
    // Half the sessions the analytics API knows (enriched), half never (given up).
    let conversations = traffic.sim_conversations();
    let half = conversations.len() / 2;
    sim.register_conversations(conversations.into_iter().take(half).collect::<Vec<_>>());
    let tenants = if multi {
        register(&res, &sim).await?
    } else {
        Vec::new()
    };

    refresher(&res, &sim, &tenants).await;
    if upto == Role::TokenRefresher {
        return Ok(res);
    }
    events(&res, &sim, shape, &traffic, &clock).await;
    if upto == Role::ConversationEvents {
        return Ok(res);
    }
    // The token dies: the sweeper recovers it (single flight), then sweeps
    // two hours on: enrichments are late (dirty marks) and the rest given up.
    sim.revoke_all();
    clock.advance(Duration::from_secs(2 * 3_600));
    sweeper(&res, &sim, &tenants).await;
    if upto == Role::EnrichmentSweeper {
        return Ok(res);
    }
    // A refusal the dashboard meets is an error answer; the denial is what counts.
    if let Err(e) = dashboard(&res, &clock, multi).await
        && res.denials().is_empty()
    {
        return Err(format!("dashboard: {e}"));
    }
    Ok(res)
}

/// The operator registers one org: its secret and its tenant item.
async fn register(res: &TestResources, sim: &Simulator) -> Result<Vec<Tenant>, String> {
    let arn = crate::orgs::create_org_secret(res, ORG, DEFAULT_CLIENT_SECRET).await?;
    let tenant = Tenant {
        org_id: ORG.into(),
        region: "us-east-1".into(),
        secret_arn: arn,
        pool_size: 1,
        enabled: true,
        display_name: "Org C".into(),
        base_url: Some(sim.base_url()),
    };
    TenantRegistry::new(res.dynamodb.clone(), res.tenant_table.clone())
        .put(&tenant)
        .await
        .map_err(|e| e.to_string())?;
    Ok(vec![tenant])
}

/// The registry as `role` lists it (the refresher's and sweeper's scan).
async fn listed(res: &TestResources, role: Role) -> Vec<Tenant> {
    let r = res.as_role(role);
    TenantRegistry::new(r.dynamodb.clone(), res.tenant_table.clone())
        .list()
        .await
        .unwrap_or_default()
}

async fn refresher(res: &TestResources, sim: &Simulator, tenants: &[Tenant]) {
    if tenants.is_empty() {
        let broker = crate::product::broker(res, sim, BrokerConfig::default());
        let _ = broker.refresh_if_needed(0).await;
        return;
    }
    let role = res.as_role(Role::TokenRefresher);
    let listed = listed(res, Role::TokenRefresher).await;
    let fleet = crate::orgs::org_fleet(&role, sim.clock());
    let _ = fleet.tick_all(&listed, 4, Duration::from_secs(20)).await;
}

fn function(res: &TestResources, sim: &Simulator, multi: bool) -> ConversationEvents {
    if !multi {
        return crate::product::function(res, sim);
    }
    let handler = crate::orgs::org_handler(res, sim.clock());
    ConversationEvents::new(handler, Some(crate::product::dead_letters(res)))
}

/// The first half of the events on time, some twice; the second half 53
/// to 55 minutes late (dirty marks); one malformed.
async fn events(
    res: &TestResources,
    sim: &Simulator,
    shape: Shape,
    traffic: &crate::traffic::Traffic,
    clock: &SimClock,
) {
    let f = function(res, sim, shape.tenancy == Tenancy::MultiOrg);
    let batch = shape.delivery == Delivery::Batch;
    if batch {
        let _ = res.create_event_queue().await;
    }
    let n = traffic.events.len();
    let late = n / 2;
    let mut malformed = traffic
        .events
        .first()
        .map(|e| e.envelope.clone())
        .unwrap_or(Value::Null);
    malformed["detail"] = Value::String("not an object".into());
    let deliver = |e: Value| {
        let f = &f;
        async move {
            if batch {
                let _ = crate::delivery::eventbridge_sends(res, &e).await;
                while let Ok(p) = crate::delivery::mapping_polls(res, f).await {
                    if p.received == 0 || p.deleted == 0 {
                        break;
                    }
                }
            } else {
                let _ = f.invoke(&e, Duration::from_secs(30)).await;
            }
        }
    };
    for (i, e) in traffic.events.iter().enumerate() {
        if i == late {
            clock.advance_to(e.at_ms + 55 * 60_000);
        } else if i < late {
            clock.advance_to(e.at_ms.max(clock.now_ms()));
        }
        deliver(e.envelope.clone()).await;
        if i % 5 == 0 {
            deliver(e.envelope.clone()).await;
        }
    }
    deliver(malformed).await;
}

async fn sweeper(res: &TestResources, sim: &Simulator, tenants: &[Tenant]) {
    let cfg = SweepConfig {
        delay: Duration::ZERO,
        give_up_after: Duration::from_secs(3_600),
        ..SweepConfig::default()
    };
    if tenants.is_empty() {
        let s = crate::product::sweeper(res, sim, BrokerConfig::default(), cfg);
        let _ = s.sweep(deadline()).await;
        return;
    }
    let role = res.as_role(Role::EnrichmentSweeper);
    let listed = listed(res, Role::EnrichmentSweeper).await;
    let sweeps = OrgSweeps::new(
        Arc::new(crate::orgs::org_fleet(&role, sim.clock())),
        AnalyticsStore::new(role.analytics.clone(), res.analytics_table.clone()),
        sim.clock(),
        cfg,
    );
    let _ = sweeps.sweep_all(&listed, 4, deadline()).await;
}

/// The dashboard's data and (many orgs) its orgs, as a signed-in viewer.
async fn dashboard(res: &TestResources, clock: &Arc<SimClock>, multi: bool) -> Result<(), String> {
    let sign_in = crate::sign_in::LocalSignIn::create(&res.config)
        .await
        .map_err(|e| format!("sign-in: {e}"))?;
    let group = format!("org-{ORG}");
    let viewer = sign_in
        .add_viewer("scenario-viewer", &[&group])
        .await
        .map_err(|e| format!("viewer: {e}"))?;
    let token = viewer
        .access_token()
        .await
        .map_err(|e| format!("token: {e}"))?;
    let api = crate::product::dashboard(
        res,
        clock.clone(),
        1,
        va_analytics::dashboard::auth::Verifier::new(sign_in.auth.clone()),
    );
    let bearer = format!("Bearer {token}");
    let now = clock.now_ms();
    let mut query = vec![
        ("from".to_string(), (now - 4 * 3_600_000).to_string()),
        ("to".to_string(), now.to_string()),
    ];
    let mut paths = vec![("/api/dashboard", query.clone())];
    if multi {
        query.push(("org".into(), ORG.into()));
        paths = vec![("/api/orgs", Vec::new()), ("/api/dashboard", query)];
    }
    for (path, q) in paths {
        let reply = api.reply("GET", path, &q, Some(&bearer)).await;
        if reply.status != 200 {
            return Err(format!("{path}: {}", reply.status));
        }
    }
    Ok(())
}

/// Denials `role` met in `res`.
pub fn denials_of(res: &TestResources, role: Role) -> Vec<crate::iam::Denial> {
    res.denials()
        .into_iter()
        .filter(|d| d.caller.contains(role.logical_id()))
        .collect()
}
