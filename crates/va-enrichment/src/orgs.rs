//! Many orgs, one sweeper function: a [`Sweeper`] per enabled org, each with
//! that org's broker (its region, its secret, its token items) and that
//! org's keys in the analytics table, swept a few at a time, so one org's
//! outage or bad secret leaves another's sessions untouched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use lambda_support::Clock;
use serde::Serialize;
use token_broker::fleet::{OrgFleet, TenantError};
use token_broker::{GenesysTokenSource, Tenant};
use tokio::time::Instant;
use va_analytics::{AnalyticsError, AnalyticsStore};

use crate::lookup::BrokerAccess;
use crate::sweep::{SweepConfig, SweepReport, Sweeper};

/// The sweeper of one org.
pub type OrgSweeper = Sweeper<BrokerAccess<GenesysTokenSource>>;

/// What one org's sweep did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgSweep {
    /// The org.
    pub org_id: String,
    /// Its report, or why it did not run or finish.
    pub result: Result<SweepReport, String>,
}

/// Sweepers for the orgs of one deployment; build once per container.
pub struct OrgSweeps {
    fleet: Arc<OrgFleet>,
    store: AnalyticsStore,
    clock: Arc<dyn Clock>,
    cfg: SweepConfig,
    sweepers: Mutex<HashMap<String, (Tenant, Arc<OrgSweeper>)>>,
}

impl OrgSweeps {
    /// Sweepers over `fleet`'s brokers and `store`'s table.
    pub fn new(
        fleet: Arc<OrgFleet>,
        store: AnalyticsStore,
        clock: Arc<dyn Clock>,
        cfg: SweepConfig,
    ) -> Self {
        Self {
            fleet,
            store,
            clock,
            cfg,
            sweepers: Mutex::new(HashMap::new()),
        }
    }

    /// The org's sweeper, built on first use and again when its item changes.
    pub fn sweeper(&self, tenant: &Tenant) -> Result<Arc<OrgSweeper>, TenantError> {
        let mut sweepers = self.sweepers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((known, s)) = sweepers.get(&tenant.org_id)
            && known == tenant
        {
            return Ok(s.clone());
        }
        let (broker, api) = self.fleet.access(tenant)?;
        let sweeper = Arc::new(Sweeper::new(
            BrokerAccess { broker, api },
            self.store.for_org(&tenant.org_id),
            self.clock.clone(),
            self.cfg.clone(),
        ));
        sweepers.insert(tenant.org_id.clone(), (tenant.clone(), sweeper.clone()));
        Ok(sweeper)
    }

    /// One sweep of every enabled org in `tenants`, `concurrency` at a time,
    /// all stopping by `deadline`. Results in the order of `tenants`' enabled orgs.
    pub async fn sweep_all(
        &self,
        tenants: &[Tenant],
        concurrency: usize,
        deadline: Instant,
    ) -> Vec<OrgSweep> {
        let enabled: Vec<&Tenant> = tenants.iter().filter(|t| t.enabled).collect();
        // Each run starts at another org, so when time runs short it is not
        // always the same orgs that wait.
        let start = usize::try_from(self.clock.now_ms().div_euclid(60_000)).unwrap_or(0)
            % enabled.len().max(1);
        let runs = (0..enabled.len()).map(|k| {
            let i = (start + k) % enabled.len();
            let t = enabled[i];
            async move {
                let result = match self.sweeper(t) {
                    Err(e) => Err(e.to_string()),
                    Ok(s) => s.sweep(deadline).await.map_err(|e| e.to_string()),
                };
                (
                    i,
                    OrgSweep {
                        org_id: t.org_id.clone(),
                        result,
                    },
                )
            }
        });
        // Unordered: an org waiting out a Retry-After holds one place only.
        let mut done: Vec<(usize, OrgSweep)> = futures::stream::iter(runs)
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, s)| s).collect()
    }

    /// Whether any enabled org in `tenants` still has sessions waiting.
    pub async fn has_pending(&self, tenants: &[Tenant]) -> Result<bool, AnalyticsError> {
        for t in tenants.iter().filter(|t| t.enabled) {
            if let Ok(s) = self.sweeper(t)
                && s.has_pending().await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
