//! Many orgs, one refresher: a broker per registered org (its region's
//! hosts, its secret, its slots), built once and kept while its registry
//! item is unchanged, and a tick over every enabled org at once, with a
//! bound on concurrency and a time limit per org, so one org's bad secret,
//! outage or revocation never delays or breaks another's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use genesys::{GenesysClient, Hosts, RetryPolicy};
use lambda_support::{Clock, is_https_or_allowed_loopback};
use serde::Serialize;
use token_store::tenants::Tenant;

use crate::{
    BrokerConfig, GenesysTokenSource, SecretsManagerCredentials, TickReport, TokenBroker,
    TokenStore,
};

/// The broker of one org.
pub type OrgBroker = TokenBroker<GenesysTokenSource>;

/// An org's registry item cannot give a broker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("org {org_id}: {problem}")]
pub struct TenantError {
    /// The org.
    pub org_id: String,
    /// What is wrong with its item.
    pub problem: String,
}

/// What one org's tick did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgTick {
    /// The org.
    pub org_id: String,
    /// Its slots, or why the tick did not run or finish.
    pub result: Result<TickReport, String>,
    /// Wall time of its tick, milliseconds.
    pub elapsed_ms: u64,
}

/// An org's broker and API client, and the registry item they were built from.
type Built = (Tenant, Arc<OrgBroker>, GenesysClient);

/// Brokers for the orgs of one deployment; build once per container.
pub struct OrgFleet {
    ddb: aws_sdk_dynamodb::Client,
    secrets: aws_sdk_secretsmanager::Client,
    table: String,
    clock: Arc<dyn Clock>,
    cfg: BrokerConfig,
    retry: RetryPolicy,
    credentials_max_age: Duration,
    allow_loopback_http: bool,
    brokers: std::sync::Mutex<HashMap<String, Built>>,
    /// Where this container's next tick starts.
    rotation: Rotation,
}

/// Where a fan-out over orgs starts: with the first org the container's
/// last run did not reach, else at a position the caller chooses (one that
/// changes, such as the minute), so no org waits behind the same others
/// every time.
#[derive(Debug, Default)]
pub struct Rotation {
    resume_at: std::sync::Mutex<Option<String>>,
}

impl Rotation {
    /// Positions into `orgs` in the order to start them.
    pub fn order(&self, orgs: &[&Tenant], start: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..orgs.len()).collect();
        if order.is_empty() {
            return order;
        }
        let resume = self
            .resume_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let at = resume
            .and_then(|id| orgs.iter().position(|t| t.org_id == id))
            .unwrap_or(start % order.len());
        order.rotate_left(at);
        order
    }

    /// Remembers the first org, in `order`, whose result `missed` says it
    /// was not reached: the next run starts there.
    pub fn remember<T>(
        &self,
        order: &[usize],
        done: &[(usize, T)],
        org_of: impl Fn(&T) -> &str,
        missed: impl Fn(&T) -> bool,
    ) {
        let first = order.iter().find_map(|&i| {
            done.iter()
                .find(|(j, t)| *j == i && missed(t))
                .map(|(_, t)| org_of(t).to_string())
        });
        *self.resume_at.lock().unwrap_or_else(|e| e.into_inner()) = first;
    }
}

impl OrgFleet {
    /// A fleet over the token table `table`. `cfg` is every org's broker
    /// configuration but its pool size (the org's own).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ddb: aws_sdk_dynamodb::Client,
        secrets: aws_sdk_secretsmanager::Client,
        table: impl Into<String>,
        clock: Arc<dyn Clock>,
        cfg: BrokerConfig,
        retry: RetryPolicy,
        credentials_max_age: Duration,
        allow_loopback_http: bool,
    ) -> Self {
        Self {
            ddb,
            secrets,
            table: table.into(),
            clock,
            cfg,
            retry,
            credentials_max_age,
            allow_loopback_http,
            brokers: std::sync::Mutex::new(HashMap::new()),
            rotation: Rotation::default(),
        }
    }

    /// The fleet a function's environment describes (`TokenConfig` with
    /// `TENANTS_TABLE` set), on the SDK configuration `aws`.
    pub fn from_config(
        aws: &aws_config::SdkConfig,
        cfg: &crate::TokenConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::new(
            aws_sdk_dynamodb::Client::new(aws),
            aws_sdk_secretsmanager::Client::new(aws),
            cfg.token_table.clone(),
            clock,
            cfg.broker.clone(),
            RetryPolicy::default(),
            cfg.credentials_max_age,
            cfg.allow_loopback_http,
        )
    }

    /// The lease every org's broker holds while it fetches.
    pub fn lease(&self) -> Duration {
        self.cfg.lease
    }

    /// The org's broker, built on first use and again when its item changes.
    pub fn broker(&self, tenant: &Tenant) -> Result<Arc<OrgBroker>, TenantError> {
        self.access(tenant).map(|(b, _)| b)
    }

    /// The org's broker and the Platform API client of its region (one
    /// connection pool for its token endpoint and its API).
    pub fn access(&self, tenant: &Tenant) -> Result<(Arc<OrgBroker>, GenesysClient), TenantError> {
        let mut brokers = self.brokers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((known, b, c)) = brokers.get(&tenant.org_id)
            && known == tenant
        {
            return Ok((b.clone(), c.clone()));
        }
        let bad = |problem: String| TenantError {
            org_id: tenant.org_id.clone(),
            problem,
        };
        // The hosts decide where the org's client secret goes: in
        // production only its region's Genesys Cloud hosts. A base URL (the
        // simulator) is a test switch, so whoever can write the tenant table
        // cannot send secrets elsewhere.
        let hosts = match &tenant.base_url {
            Some(url) if self.allow_loopback_http && is_https_or_allowed_loopback(url, true) => {
                Hosts::single(url)
            }
            Some(_) if self.allow_loopback_http => {
                return Err(bad(
                    "its base URL must be https:// (or loopback http:// in tests)".into(),
                ));
            }
            Some(_) => {
                return Err(bad(
                    "it names a base URL, which only tests may (GENESYS_ALLOW_LOOPBACK_HTTP=1): an org's hosts come from its region".into(),
                ));
            }
            None => Hosts::for_region(&tenant.region).map_err(|e| bad(e.to_string()))?,
        };
        let client =
            GenesysClient::new(hosts, self.retry.clone()).map_err(|e| bad(e.to_string()))?;
        let credentials = SecretsManagerCredentials::new(
            self.secrets.clone(),
            tenant.secret_arn.clone(),
            self.credentials_max_age,
        );
        // Token items per org (and secret): two orgs never share a slot.
        let store = TokenStore::new(
            self.ddb.clone(),
            self.table.clone(),
            &tenant.token_identity(),
        );
        let cfg = BrokerConfig {
            pool_size: tenant.pool_size.clamp(1, 32),
            ..self.cfg.clone()
        };
        let broker = Arc::new(TokenBroker::new(
            store,
            Arc::new(GenesysTokenSource::new(client.clone(), credentials)),
            self.clock.clone(),
            cfg,
        ));
        brokers.insert(
            tenant.org_id.clone(),
            (tenant.clone(), broker.clone(), client.clone()),
        );
        Ok((broker, client))
    }

    /// Checks a new org before it is enabled: reads its secret, obtains a
    /// token through its broker and checks it with `HEAD /api/v2/tokens/me`.
    /// The error says what is wrong (the secret, the region, the network).
    pub async fn validate(&self, tenant: &Tenant, within: Duration) -> Result<(), TenantError> {
        let bad = |problem: String| TenantError {
            org_id: tenant.org_id.clone(),
            problem,
        };
        let broker = self.broker(tenant)?;
        let report = tokio::time::timeout(within, broker.tick())
            .await
            .map_err(|_| bad(format!("no token within {} s", within.as_secs())))?;
        let failure = report.slots.iter().find_map(|s| match &s.outcome {
            crate::SlotOutcome::Failed { error } => Some(error.clone()),
            crate::SlotOutcome::Skipped { reason } if *reason != "fresh" => {
                Some(format!("slot {} was not refreshed ({reason})", s.slot))
            }
            _ => None,
        });
        match failure {
            None => Ok(()),
            Some(e) if e.contains("invalid_client") || e.contains("rejected") => Err(bad(format!(
                "Genesys Cloud rejected the OAuth client in the secret (check its clientId and clientSecret, and that the client belongs to this org's region): {e}"
            ))),
            Some(e) if e.contains("could not read secret") => Err(bad(format!(
                "the secret could not be read (check its ARN and this role's secretsmanager:GetSecretValue): {e}"
            ))),
            Some(e)
                if e.contains("unavailable") || e.contains("connection") || e.contains("dns") =>
            {
                Err(bad(format!(
                    "Genesys Cloud could not be reached for region {} (check the region): {e}",
                    tenant.region
                )))
            }
            Some(e) => Err(bad(e)),
        }
    }

    /// One tick for every enabled org in `tenants`, `concurrency` at a time,
    /// each cut off after `per_slot` times its slots. Results in the order
    /// of `tenants`' enabled orgs.
    pub async fn tick_all(
        &self,
        tenants: &[Tenant],
        concurrency: usize,
        per_slot: Duration,
    ) -> Vec<OrgTick> {
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
        self.tick_all_within(tenants, concurrency, per_slot, far, 0)
            .await
    }

    /// [`Self::tick_all`] inside an invocation that ends at `deadline`, each
    /// org cut off after `per_slot` times its slots (a tick refreshes them
    /// one after another). An org not started while its share still fits
    /// before the deadline is reported as not reached ([`NOT_REACHED`]); one
    /// started later is cut off at the deadline. This container's next tick
    /// starts with the first org not reached ([`Rotation`]); a new container
    /// starts at `start` (modulo the orgs: the caller passes something that
    /// changes, such as the minute).
    pub async fn tick_all_within(
        &self,
        tenants: &[Tenant],
        concurrency: usize,
        per_slot: Duration,
        deadline: tokio::time::Instant,
        start: usize,
    ) -> Vec<OrgTick> {
        let enabled: Vec<&Tenant> = tenants.iter().filter(|t| t.enabled).collect();
        let order = self.rotation.order(&enabled, start);
        let runs = order.iter().map(|&i| {
            let t = enabled[i];
            let share =
                per_slot.saturating_mul(u32::try_from(t.pool_size.clamp(1, 32)).unwrap_or(1));
            async move { (i, self.tick_one(t, share, deadline).await) }
        });
        // Buffered in order, so orgs start in the rotation's order; a slow
        // org holds one place, never the ones behind it.
        let mut done: Vec<(usize, OrgTick)> = futures::stream::iter(runs)
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        self.rotation.remember(
            &order,
            &done,
            |t| &t.org_id,
            |t| t.result.as_ref().is_err_and(|e| e == NOT_REACHED),
        );
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, t)| t).collect()
    }

    /// One org's tick, cut off after `per_org` or at `deadline`.
    async fn tick_one(
        &self,
        t: &Tenant,
        per_org: Duration,
        deadline: tokio::time::Instant,
    ) -> OrgTick {
        let started = tokio::time::Instant::now();
        let left = deadline.saturating_duration_since(started);
        let result = if left < per_org.min(MIN_ORG_TIME) {
            Err(NOT_REACHED.to_string())
        } else {
            let limit = per_org.min(left);
            match self.broker(t) {
                Err(e) => Err(e.to_string()),
                Ok(b) => match tokio::time::timeout(limit, b.tick()).await {
                    Ok(report) => Ok(report),
                    Err(_) => Err(format!(
                        "the tick did not finish within {} s",
                        limit.as_secs()
                    )),
                },
            }
        };
        OrgTick {
            org_id: t.org_id.clone(),
            result,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// An org's result when the invocation's time ran out before its turn.
pub const NOT_REACHED: &str =
    "not reached before the invocation's deadline; the next tick starts with it";

/// Less than this left is not worth starting an org's tick: a token request
/// alone may take 5 s a try.
const MIN_ORG_TIME: Duration = Duration::from_secs(15);

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: &str) -> Tenant {
        Tenant {
            org_id: id.into(),
            region: "us-east-1".into(),
            secret_arn: String::new(),
            pool_size: 1,
            enabled: true,
            display_name: String::new(),
            base_url: None,
            offboarded: false,
        }
    }

    #[test]
    fn a_run_starts_where_the_last_one_stopped_short_else_at_the_start_given() {
        let (a, b, c, d) = (org("a"), org("b"), org("c"), org("d"));
        let orgs = [&a, &b, &c, &d];
        let r = Rotation::default();
        assert_eq!(r.order(&orgs, 0), vec![0, 1, 2, 3]);
        assert_eq!(
            r.order(&orgs, 6),
            vec![2, 3, 0, 1],
            "the start, modulo the orgs"
        );
        // c and d were not reached: the next run starts with c.
        let order = r.order(&orgs, 1);
        // (position, (org, reached)), in the order the runs finished.
        let done = [
            (1, ("b", true)),
            (3, ("d", false)),
            (2, ("c", false)),
            (0, ("a", true)),
        ];
        r.remember(&order, &done, |t| t.0, |t| !t.1);
        assert_eq!(
            r.order(&orgs, 0)[0],
            2,
            "c: the first not reached in start order"
        );
        // Everyone reached: back to the start given.
        r.remember(&order, &[(0, ("a", true))], |t| t.0, |t| !t.1);
        assert_eq!(r.order(&orgs, 3), vec![3, 0, 1, 2]);
        assert!(r.order(&[], 5).is_empty());
    }
}
