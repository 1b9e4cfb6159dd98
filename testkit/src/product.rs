//! The product's parts wired to a test's moto resources and simulator, the
//! way a Lambda container wires them to AWS and Genesys Cloud.

use std::sync::Arc;
use std::time::Duration;

use genesys::{GenesysClient, Hosts, RetryPolicy};
use token_broker::{
    BrokerConfig, GenesysTokenSource, SecretsManagerCredentials, TokenBroker, TokenStore,
};
use va_analytics::{AnalyticsStore, KpiConfig};
use va_enrichment::lookup::BrokerAccess;
use va_enrichment::{SweepConfig, Sweeper};
use va_handler::EventHandler;

use crate::aws::TestResources;
use crate::iam::Role;
use crate::sim::Simulator;

pub type Broker = TokenBroker<GenesysTokenSource>;
/// The sweeper the product runs: the broker's token.
pub type ProductSweeper = Sweeper<BrokerAccess<GenesysTokenSource>>;

/// Retries that keep tests fast: the same policy, millisecond pauses.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_in_call_wait: Duration::ZERO,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        api_timeout: Duration::from_secs(20),
    }
}

/// A Platform API client for the simulator.
pub fn api(sim: &Simulator) -> GenesysClient {
    match GenesysClient::new(Hosts::single(&sim.base_url()), fast_retries()) {
        Ok(c) => c,
        Err(e) => panic!("http client: {e}"),
    }
}

/// One token-refresher container's broker: its own Genesys client,
/// credentials cache and memory tier, signing as the refresher's role.
pub fn broker(res: &TestResources, sim: &Simulator, cfg: BrokerConfig) -> Broker {
    broker_as(&res.as_role(Role::TokenRefresher), sim, cfg)
}

/// A broker whose AWS calls `res`'s clients sign.
fn broker_as(res: &TestResources, sim: &Simulator, cfg: BrokerConfig) -> Broker {
    let creds = SecretsManagerCredentials::new(
        res.secrets.clone(),
        res.secret_id.clone(),
        Duration::from_secs(300),
    );
    let store = TokenStore::new(
        res.dynamodb.clone(),
        res.token_table.clone(),
        &res.secret_id,
    );
    TokenBroker::new(
        store,
        Arc::new(GenesysTokenSource::new(api(sim), creds)),
        sim.clock(),
        cfg,
    )
}

/// The analytics store of a test's resources, through `res`'s clients
/// (the administrator's, for a test's own reads).
pub fn store(res: &TestResources) -> AnalyticsStore {
    AnalyticsStore::new(res.analytics.clone(), res.analytics_table.clone())
}

/// One container's conversation-events handler, signing as its role.
pub fn handler(res: &TestResources, sim: &Simulator) -> EventHandler {
    let role = res.as_role(Role::ConversationEvents);
    EventHandler::new(store(&role), KpiConfig::default(), sim.clock())
}

/// The dead-letter queue as conversation-events sends to it (its role).
pub fn dead_letters(res: &TestResources) -> va_handler::DeadLetterQueue {
    let role = res.as_role(Role::ConversationEvents);
    va_handler::DeadLetterQueue::new(role.sqs.clone(), res.dead_letter_queue_url.clone())
}

/// The dead-letter queue as the operator reads and redrives it
/// (`va-admin`, signing as a role with the stack's `OperatorPolicy`).
pub fn dead_letters_for_operator(res: &TestResources) -> va_handler::DeadLetterQueue {
    let operator = res.as_role(Role::Operator);
    va_handler::DeadLetterQueue::new(operator.sqs.clone(), res.dead_letter_queue_url.clone())
}

/// One conversation-events function as its Lambda wires it, dead-letter queue included.
pub fn function(res: &TestResources, sim: &Simulator) -> va_handler::ConversationEvents {
    va_handler::ConversationEvents::new(handler(res, sim), Some(dead_letters(res)))
}

/// The enrichment sweeper with its own broker, as its Lambda wires it,
/// signing as its role.
pub fn sweeper(
    res: &TestResources,
    sim: &Simulator,
    broker_cfg: BrokerConfig,
    cfg: SweepConfig,
) -> ProductSweeper {
    let role = res.as_role(Role::EnrichmentSweeper);
    let access = BrokerAccess {
        broker: Arc::new(broker_as(&role, sim, broker_cfg)),
        api: api(sim),
    };
    Sweeper::new(access, store(&role), sim.clock(), cfg)
}

/// The dashboard's API over a test's resources, as its Lambda wires it
/// (its role; in MultiOrg, per-org readers through the org reader role).
pub fn dashboard(
    res: &TestResources,
    clock: Arc<dyn lambda_support::Clock>,
    pool_size: usize,
    auth: Arc<va_analytics::dashboard::auth::Verifier>,
) -> va_analytics::dashboard::DashboardApi {
    let role = res.as_role(Role::DashboardApi);
    let multi = res
        .stack
        .as_ref()
        .is_some_and(|s| s.shape.tenancy == crate::iam::Tenancy::MultiOrg);
    let reader_arn = res
        .stack
        .as_ref()
        .and_then(|s| s.role(Role::DashboardOrgReader))
        .map(|r| r.arn);
    va_analytics::dashboard::DashboardApi {
        store: AnalyticsStore::new(role.dynamodb.clone(), res.analytics_table.clone()),
        tokens: TokenStore::new(
            role.dynamodb.clone(),
            res.token_table.clone(),
            &res.secret_id,
        ),
        pool_size,
        clock,
        auth,
        tenants: multi.then(|| {
            token_broker::TenantRegistry::new(role.dynamodb.clone(), res.tenant_table.clone())
        }),
        readers: match (multi, reader_arn) {
            (true, Some(arn)) => Some(Arc::new(
                va_analytics::dashboard::access::TaggedReaders::new(
                    role.config.clone(),
                    arn,
                    res.analytics_table.clone(),
                ),
            )),
            _ => None,
        },
    }
}
