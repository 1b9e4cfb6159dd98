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
//! data, token health and orgs, each org through the tagged reader;
//! `va-admin` as the operator: a redrive and the org commands.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use token_broker::{BrokerConfig, Tenant, TenantRegistry};
use va_analytics::{AnalyticsStore, KpiConfig};
use va_enrichment::{OrgSweeps, SweepConfig};
use va_handler::{ConversationEvents, EventHandler};

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
        secret_key: true,
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
/// The paths run in order (refresher, events, sweeper, dashboard,
/// operator) and stop
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
    // A step a removal breaks fails with the denial recorded: that is the
    // finding, not an error of the scenario.
    match paths(&res, shape, upto).await {
        Err(e) if res.denials().is_empty() => Err(e),
        _ => Ok(res),
    }
}

async fn paths(res: &TestResources, shape: Shape, upto: Role) -> Result<(), String> {
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
        register(res, &sim).await?
    } else {
        Vec::new()
    };

    refresher(res, &sim, &tenants).await;
    if upto == Role::TokenRefresher {
        return Ok(());
    }
    let held = events(res, &sim, shape, &traffic, &clock).await;
    if upto == Role::ConversationEvents {
        return Ok(());
    }
    // The token dies: the sweeper recovers it (single flight), then sweeps
    // two hours on: enrichments are late (dirty marks) and the rest given up.
    sim.revoke_all();
    clock.advance(Duration::from_secs(2 * 3_600));
    sweeper(res, &sim, &tenants).await;
    if upto == Role::EnrichmentSweeper {
        return Ok(());
    }
    // A refusal the dashboard meets is an error answer; the denial is what counts.
    dashboard(res, &clock, multi)
        .await
        .map_err(|e| format!("dashboard: {e}"))?;
    if upto != Role::Operator {
        return Ok(());
    }
    operator(res, &sim, held, &tenants)
        .await
        .map_err(|e| format!("operator: {e}"))
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
        offboarded: false,
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
/// to 55 minutes late (dirty marks); one malformed; one in seven held back
/// for the redrive (returned).
async fn events(
    res: &TestResources,
    sim: &Simulator,
    shape: Shape,
    traffic: &crate::traffic::Traffic,
    clock: &SimClock,
) -> Vec<Value> {
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
    // One event in seven is held back: each reaches the dead-letter queue
    // (an SQS redrive there) for the operator's redrive.
    let mut held = Vec::new();
    for (i, e) in traffic.events.iter().enumerate() {
        if i % 7 == 3 {
            held.push(e.envelope.clone());
            continue;
        }
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
    held
}

async fn sweeper(res: &TestResources, sim: &Simulator, tenants: &[Tenant]) {
    let cfg = SweepConfig {
        delay: Duration::ZERO,
        give_up_after: Duration::from_secs(3_600),
        ..SweepConfig::default()
    };
    // Under the lease, as the function runs it.
    let role = res.as_role(Role::EnrichmentSweeper);
    let lease = va_analytics::SweepLease::new(role.analytics.clone(), res.analytics_table.clone());
    let now = sim.clock().now_ms();
    let sweep = async {
        if tenants.is_empty() {
            let s = crate::product::sweeper(res, sim, BrokerConfig::default(), cfg);
            let _ = s.sweep(deadline()).await;
            return;
        }
        let listed = listed(res, Role::EnrichmentSweeper).await;
        let sweeps = OrgSweeps::new(
            Arc::new(crate::orgs::org_fleet(&role, sim.clock())),
            AnalyticsStore::new(role.analytics.clone(), res.analytics_table.clone()),
            sim.clock(),
            cfg,
        );
        let _ = sweeps.sweep_all(&listed, 4, deadline()).await;
    };
    let _ = lease.run("scenario", now, now + 120_000, sweep).await;
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
    for (path, q) in &paths {
        let reply = api.reply("GET", path, q, Some(&bearer)).await;
        if reply.status != 200 {
            return Err(format!("{path}: {}", reply.status));
        }
    }
    if multi {
        // The vendor's staff: every registered org, listed from the registry.
        let staff = sign_in
            .add_viewer(
                "scenario-staff",
                &[va_analytics::dashboard::access::ALL_ORGS_GROUP],
            )
            .await
            .map_err(|e| format!("staff: {e}"))?;
        let bearer = format!(
            "Bearer {}",
            staff
                .access_token()
                .await
                .map_err(|e| format!("token: {e}"))?
        );
        for (path, q) in &paths {
            let reply = api.reply("GET", path, q, Some(&bearer)).await;
            if reply.status != 200 {
                return Err(format!("{path} as staff: {}", reply.status));
            }
        }
    }
    Ok(())
}

/// `va-admin` as the operator runs it: a redrive of the dead letters (one
/// event in seven, never counted, now late) and, with many orgs, the
/// org commands: list, add's check, disable, enable, remove.
async fn operator(
    res: &TestResources,
    sim: &Simulator,
    held: Vec<Value>,
    tenants: &[Tenant],
) -> Result<(), String> {
    // What SQS's redrive leaves on the queue: the events alone (set-up).
    let setup =
        va_handler::DeadLetterQueue::new(res.sqs.clone(), res.dead_letter_queue_url.clone());
    for event in held {
        setup
            .send_raw(&event.to_string())
            .await
            .map_err(|e| e.to_string())?;
    }
    let op = res.as_role(Role::Operator);
    let store = AnalyticsStore::new(op.analytics.clone(), res.analytics_table.clone());
    let handler = EventHandler::new(store, KpiConfig::default(), sim.clock());
    let handler = match tenants.is_empty() {
        true => handler,
        false => handler.with_tenancy(va_handler::Tenancy::Registry(Arc::new(
            va_handler::OrgDirectory::new(crate::orgs::operator_registry(res)?, sim.clock()),
        ))),
    };
    let queue = crate::product::dead_letters_for_operator(res);
    let opts = va_handler::redrive::RedriveOptions {
        wait_s: 0,
        visibility_s: 30,
        ..va_handler::redrive::RedriveOptions::default()
    };
    let report = va_handler::redrive::redrive(&handler, &queue, &opts)
        .await
        .map_err(|e| format!("redrive: {e}"))?;
    if report.counted == 0 {
        return Err(format!("the redrive counted nothing: {report:?}"));
    }
    // `migrate`: one cell of the first layout (set-up) moves to the sharded
    // cells.
    res.dynamodb
        .put_item()
        .table_name(&res.analytics_table)
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("agg#org".into()),
        )
        .item(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(va_analytics::kpi::minute_sk(START_MS)),
        )
        .item(
            "events",
            aws_sdk_dynamodb::types::AttributeValue::N("3".into()),
        )
        .send()
        .await
        .map_err(|e| format!("a layout-1 cell: {e}"))?;
    let op_store = AnalyticsStore::new(op.analytics.clone(), res.analytics_table.clone());
    let migrated = va_analytics::migrate::V1Migration::new(&op_store)
        .run(false)
        .await
        .map_err(|e| format!("migrate: {e}"))?;
    if migrated.migrated == 0 {
        return Err(format!("the migration moved nothing: {migrated:?}"));
    }
    let Some(tenant) = tenants.first() else {
        return Ok(());
    };
    // `org add` of a new org: its secret stored (and rotated once), the
    // check (which reads it and obtains a token), then the registry.
    let registry = crate::orgs::operator_registry(res)?;
    let added = Tenant {
        org_id: "0d000000-0000-4000-8000-00000000000d".into(),
        secret_arn: crate::orgs::create_org_secret(
            res,
            "0d000000-0000-4000-8000-00000000000d",
            DEFAULT_CLIENT_SECRET,
        )
        .await?,
        ..tenant.clone()
    };
    op.secrets
        .put_secret_value()
        .secret_id(&added.secret_arn)
        .secret_string(
            serde_json::json!({"clientId": DEFAULT_CLIENT_ID, "clientSecret": DEFAULT_CLIENT_SECRET})
                .to_string(),
        )
        .send()
        .await
        .map_err(|e| format!("rotate: {e}"))?;
    registry.list().await.map_err(|e| e.to_string())?;
    va_admin::buses::count_event_buses(&aws_sdk_eventbridge::Client::new(&op.config)).await?;
    registry
        .get(&added.org_id)
        .await
        .map_err(|e| e.to_string())?;
    crate::orgs::org_fleet(&op, sim.clock())
        .validate(&added, Duration::from_secs(20))
        .await
        .map_err(|e| format!("org add's check: {e}"))?;
    registry.put(&added).await.map_err(|e| e.to_string())?;
    // `org disable`, then `org remove`.
    registry
        .set_enabled(&added.org_id, false)
        .await
        .map_err(|e| e.to_string())?;
    registry
        .remove(&added.org_id)
        .await
        .map_err(|e| e.to_string())?;
    // `org offboard` of the org the events counted for, its bus wired as
    // the partner and infra/org.yaml make it (set-up).
    crate::orgs::wire_org_bus(res, &tenant.org_id, "perm").await?;
    let o = va_admin::offboard::Offboard {
        org_id: tenant.org_id.clone(),
        stack_name: res.stack_name.clone(),
        analytics_table: res.analytics_table.clone(),
        tenants_table: res.tenant_table.clone(),
        token_table: res.token_table.clone(),
        dry_run: false,
    };
    let report = va_admin::offboard::offboard(&op.config, &o)
        .await
        .map_err(|e| format!("offboard: {e}"))?;
    if report.rules.is_empty() || report.items.deleted == 0 || report.token_slots_cleared == 0 {
        return Err(format!("the offboarding found too little: {report:?}"));
    }
    Ok(())
}

/// Denials `role` met in `res`.
pub fn denials_of(res: &TestResources, role: Role) -> Vec<crate::iam::Denial> {
    res.denials()
        .into_iter()
        .filter(|d| d.caller.contains(&format!("-{}-X1/", role.role_id())))
        .collect()
}
