//! `va-admin org offboard`: an org leaves the deployment and takes its data
//! with it. In this order, so a run stopped half way is finished by running
//! it again:
//! 1. its rules (`<stack>-org-*` on its partner bus) are disabled, so its
//!    events stop at EventBridge instead of reaching the handler;
//! 2. its registry item is marked offboarded: an event already on its way
//!    (EventBridge may match a just-disabled rule for "a short period",
//!    DisableRule API reference) is dropped, not dead-lettered, and the
//!    refresher and the sweeper leave the org alone;
//! 3. every item of the org in the analytics table is deleted by key
//!    ([`va_analytics::OrgPurge`]);
//! 4. its token items are deleted.
//!
//! The registry item stays as the tombstone that drops late events; `org
//! remove` deletes it once the org stack is deleted.

use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::RuleState;
use serde::Serialize;
use token_broker::{TenantRegistry, TokenStore};
use va_analytics::{AnalyticsStore, OrgPurge, PurgeReport};

/// Token slots a tenant can have (`TokenPoolSize` and `--pool-size` stop at 32).
pub const MAX_SLOTS: usize = 32;

/// What to offboard, and where.
#[derive(Debug, Clone)]
pub struct Offboard {
    /// The org (lowercase UUID).
    pub org_id: String,
    /// The main stack's name: the org's rules are `<stack>-org-*`.
    pub stack_name: String,
    /// The analytics table.
    pub analytics_table: String,
    /// The tenant table.
    pub tenants_table: String,
    /// The token table.
    pub token_table: String,
    /// Count only: change nothing.
    pub dry_run: bool,
}

/// What an offboarding found and did.
#[derive(Debug, Clone, Serialize)]
pub struct OffboardReport {
    /// The org.
    pub org_id: String,
    /// Only counted.
    pub dry_run: bool,
    /// Its rules (`<bus>/<rule>`), disabled now or before.
    pub rules: Vec<String>,
    /// It was in the registry (and is now marked offboarded).
    pub registered: bool,
    /// Its analytics items, by kind, and how many were deleted.
    pub items: PurgeReport,
    /// Token slots cleared.
    pub token_slots_cleared: usize,
}

/// Runs (or, with `dry_run`, counts) an offboarding.
pub async fn offboard(aws: &aws_config::SdkConfig, o: &Offboard) -> Result<OffboardReport, String> {
    let events = aws_sdk_eventbridge::Client::new(aws);
    let ddb = aws_sdk_dynamodb::Client::new(aws);
    let rules = org_rules(&events, &o.org_id, &o.stack_name).await?;
    if !o.dry_run {
        for (bus, rule, state) in &rules {
            if *state != RuleState::Disabled {
                disable(&events, bus, rule).await?;
            }
        }
    }
    let registry = TenantRegistry::new(ddb.clone(), o.tenants_table.clone());
    let tenant = registry.get(&o.org_id).await.map_err(|e| e.to_string())?;
    if !o.dry_run && tenant.is_some() {
        registry
            .set_offboarded(&o.org_id)
            .await
            .map_err(|e| e.to_string())?;
    }
    let store = AnalyticsStore::new(ddb.clone(), o.analytics_table.clone());
    let items = OrgPurge::new(&store, &o.org_id)
        .map_err(|e| e.to_string())?
        .run(o.dry_run)
        .await
        .map_err(|e| e.to_string())?;
    let mut token_slots_cleared = 0;
    if let (Some(t), false) = (&tenant, o.dry_run) {
        let tokens = TokenStore::new(ddb, o.token_table.clone(), &t.token_identity());
        for slot in 0..MAX_SLOTS {
            tokens.delete(slot).await.map_err(|e| e.to_string())?;
            token_slots_cleared += 1;
        }
    }
    Ok(OffboardReport {
        org_id: o.org_id.clone(),
        dry_run: o.dry_run,
        rules: rules.iter().map(|(b, r, _)| format!("{b}/{r}")).collect(),
        registered: tenant.is_some(),
        items,
        token_slots_cleared,
    })
}

/// The org's partner buses' rules of this deployment: (bus, rule, state).
async fn org_rules(
    events: &aws_sdk_eventbridge::Client,
    org_id: &str,
    stack: &str,
) -> Result<Vec<(String, String, RuleState)>, String> {
    let fail = |op: &str, e: String| format!("EventBridge {op} failed: {e}");
    let buses = events
        .list_event_buses()
        .name_prefix(format!("aws.partner/genesys.com/cloud/{org_id}/"))
        .send()
        .await
        .map_err(|e| fail("ListEventBuses", DisplayErrorContext(e).to_string()))?;
    let mut out = Vec::new();
    for bus in buses.event_buses().iter().filter_map(|b| b.name()) {
        let mut next = None;
        loop {
            let page = events
                .list_rules()
                .event_bus_name(bus)
                .name_prefix(format!("{stack}-org-"))
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| fail("ListRules", DisplayErrorContext(e).to_string()))?;
            for rule in page.rules() {
                if let Some(name) = rule.name() {
                    let state = rule.state().cloned().unwrap_or(RuleState::Enabled);
                    out.push((bus.to_string(), name.to_string(), state));
                }
            }
            next = page.next_token().map(str::to_string);
            if next.is_none() {
                break;
            }
        }
    }
    Ok(out)
}

async fn disable(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    rule: &str,
) -> Result<(), String> {
    events
        .disable_rule()
        .name(rule)
        .event_bus_name(bus)
        .send()
        .await
        .map_err(|e| {
            format!(
                "EventBridge DisableRule {bus}/{rule} failed: {}",
                DisplayErrorContext(e)
            )
        })?;
    Ok(())
}
