//! Which org an event counts for. A single-org deployment has one implicit
//! org (`""`, the first version's keys). A multi-org deployment takes the org
//! from the event's `source` and counts the event only if the tenant
//! registry has that org enabled; otherwise the event is rejected with the
//! reason (dead-lettered, redrivable once the org is enabled), never
//! counted under another org. An offboarded org's events (still in flight
//! after its rule was disabled) are dropped: its data is gone on purpose.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lambda_support::Clock;
use serde_json::Value;
use token_store::StoreError;
use token_store::tenants::{Tenant, TenantRegistry};
use va_events::Rejection;

/// How long a registry answer is kept: an org enabled or disabled takes
/// effect within this time on every container.
pub const REGISTRY_CACHE_MS: i64 = 60_000;
/// Cached answers per container before the cache starts afresh.
const MAX_CACHED_ORGS: usize = 10_000;

/// One org or many.
#[derive(Clone)]
pub enum Tenancy {
    /// Every event counts for the implicit org.
    Single,
    /// Events count for the org of their `source`, if the registry enables it.
    Registry(Arc<OrgDirectory>),
}

impl std::fmt::Debug for Tenancy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tenancy::Single => "Single",
            Tenancy::Registry(_) => "Registry",
        })
    }
}

/// The tenant registry as the handler reads it: one `GetItem` per org per
/// [`REGISTRY_CACHE_MS`] and container.
pub struct OrgDirectory {
    registry: TenantRegistry,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<String, (Option<Tenant>, i64)>>,
}

impl OrgDirectory {
    /// Over `registry`, on `clock`.
    pub fn new(registry: TenantRegistry, clock: Arc<dyn Clock>) -> Self {
        Self {
            registry,
            clock,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The org's registry item, if any (cached).
    pub async fn get(&self, org_id: &str) -> Result<Option<Tenant>, StoreError> {
        let now = self.clock.now_ms();
        if let Some((t, at)) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(org_id)
            && now.saturating_sub(*at) < REGISTRY_CACHE_MS
        {
            return Ok(t.clone());
        }
        let t = self.registry.get(org_id).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED_ORGS {
            cache.clear();
        }
        cache.insert(org_id.to_string(), (t.clone(), now));
        Ok(t)
    }
}

/// Why an event has no org to count for.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The source names no org, or one that is unknown or disabled.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The org is offboarded: the event is dropped, neither counted nor
    /// dead-lettered.
    #[error("names org {0}, which is offboarded")]
    Offboarded(String),
    /// The registry could not be read; a retry may route the event.
    #[error("the tenant registry could not be read: {0}")]
    Registry(#[from] StoreError),
}

impl Tenancy {
    /// The org `raw` counts for: `""` in a single-org deployment.
    pub async fn org_of(&self, raw: &Value) -> Result<String, RouteError> {
        let Tenancy::Registry(directory) = self else {
            return Ok(String::new());
        };
        let org = va_events::org_of(raw)?;
        let reject = |problem: String| Rejection {
            event_id: va_events::event_id_of(raw).to_string(),
            field: "source".into(),
            problem,
        };
        match directory.get(&org).await? {
            Some(t) if t.enabled => Ok(org),
            Some(t) if t.offboarded => Err(RouteError::Offboarded(org)),
            Some(_) => Err(reject(format!(
                "names org {org}, which is disabled in the tenant registry"
            ))
            .into()),
            None => Err(reject(format!(
                "names org {org}, which is not in the tenant registry"
            ))
            .into()),
        }
    }
}
