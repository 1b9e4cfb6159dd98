//! Many orgs, one sweeper function: a [`Sweeper`] per enabled org, each with
//! that org's broker (its region, its secret, its token items) and that
//! org's keys in the analytics table, swept a few at a time, so one org's
//! outage or bad secret leaves another's sessions untouched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use lambda_support::Clock;
use serde::Serialize;
use token_broker::fleet::{OrgFleet, Rotation, TenantError};
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
    /// Where this container's next sweep starts.
    rotation: Rotation,
}

/// An org's result when the invocation's time ran out before its turn.
pub const NOT_REACHED: &str =
    "not reached before the invocation's deadline; the next sweep starts with it";

/// The least time an org's sweep is given (its share never goes below it),
/// and the least left for one to be started at all.
const MIN_SHARE: std::time::Duration = std::time::Duration::from_secs(10);
const MIN_START: std::time::Duration = std::time::Duration::from_secs(3);

/// Each org's share of the time to `deadline`: an even split among `orgs`
/// over `concurrency` places, never under [`MIN_SHARE`], never past the
/// deadline. One org with a backlog or a hung API cannot hold a place for
/// the whole invocation.
pub fn org_share(
    budget: std::time::Duration,
    orgs: usize,
    concurrency: usize,
) -> std::time::Duration {
    let even = budget
        .saturating_mul(u32::try_from(concurrency.max(1)).unwrap_or(u32::MAX))
        .checked_div(u32::try_from(orgs.max(1)).unwrap_or(u32::MAX))
        .unwrap_or(budget);
    even.max(MIN_SHARE).min(budget)
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
            rotation: Rotation::default(),
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
    /// each within its share of the time ([`org_share`]) and all by
    /// `deadline`. Starts with the first org the last sweep of this
    /// container did not reach, else at an org that changes every minute.
    /// Results in the order of `tenants`' enabled orgs.
    pub async fn sweep_all(
        &self,
        tenants: &[Tenant],
        concurrency: usize,
        deadline: Instant,
    ) -> Vec<OrgSweep> {
        let enabled: Vec<&Tenant> = tenants.iter().filter(|t| t.enabled).collect();
        let share = org_share(
            deadline.saturating_duration_since(Instant::now()),
            enabled.len(),
            concurrency,
        );
        let minute = usize::try_from(self.clock.now_ms().div_euclid(60_000)).unwrap_or(0);
        let order = self.rotation.order(&enabled, minute);
        let runs = order.iter().map(|&i| {
            let t = enabled[i];
            async move { (i, self.sweep_one(t, share, deadline).await) }
        });
        // Unordered: an org waiting out a Retry-After holds one place only.
        let mut done: Vec<(usize, OrgSweep)> = futures::stream::iter(runs)
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        self.rotation.remember(
            &order,
            &done,
            |s| &s.org_id,
            |s| s.result.as_ref().is_err_and(|e| e == NOT_REACHED),
        );
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, s)| s).collect()
    }

    /// One org's sweep within `share`, by `deadline`.
    async fn sweep_one(
        &self,
        t: &Tenant,
        share: std::time::Duration,
        deadline: Instant,
    ) -> OrgSweep {
        let now = Instant::now();
        let result = if deadline.saturating_duration_since(now) < MIN_START {
            Err(NOT_REACHED.to_string())
        } else {
            match self.sweeper(t) {
                Err(e) => Err(e.to_string()),
                Ok(s) => s
                    .sweep(deadline.min(now + share))
                    .await
                    .map_err(|e| e.to_string()),
            }
        };
        OrgSweep {
            org_id: t.org_id.clone(),
            result,
        }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::org_share;

    #[test]
    fn each_org_gets_an_even_share_never_under_ten_seconds_nor_past_the_budget() {
        let s = Duration::from_secs;
        // 150 orgs, four at a time, 115 s: about 3 s each, raised to 10 s.
        assert_eq!(org_share(s(115), 150, 4), s(10));
        // Three orgs: each could have the whole budget.
        assert_eq!(org_share(s(115), 3, 4), s(115));
        // 20 orgs, four at a time: a fifth of the budget each.
        assert_eq!(org_share(s(100), 20, 4), s(20));
        // Less left than the floor: the budget.
        assert_eq!(org_share(s(4), 150, 4), s(4));
        assert_eq!(org_share(s(60), 0, 0), s(60));
    }
}
