//! The product's parts wired to a test's moto resources and simulator, the
//! way a Lambda container wires them to AWS and Genesys Cloud.

use std::sync::Arc;
use std::time::Duration;

use va_analytics::{AnalyticsStore, KpiConfig};
use token_broker::{BrokerConfig, GenesysTokenSource, TokenBroker, TokenStore};
use token_broker::SecretsManagerCredentials;
use va_handler::enrich::{BrokerAccess, Enricher};
use genesys::{GenesysClient, Hosts, RetryPolicy};
use va_handler::EventHandler;

use crate::aws::TestResources;
use crate::sim::Simulator;

pub type Broker = TokenBroker<GenesysTokenSource>;
pub type Handler = EventHandler<BrokerAccess<GenesysTokenSource>>;

/// Retries that keep tests fast: the same policy, millisecond pauses.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_in_call_wait: Duration::ZERO,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
    }
}

pub fn api(sim: &Simulator) -> GenesysClient {
    match GenesysClient::new(Hosts::single(&sim.base_url()), fast_retries()) {
        Ok(c) => c,
        Err(e) => panic!("http client: {e}"),
    }
}

/// One container's broker: its own Genesys client, credentials cache and memory tier.
pub fn broker(res: &TestResources, sim: &Simulator, cfg: BrokerConfig) -> Broker {
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

/// One container's conversation-events handler, enrichment on or off.
pub fn handler(
    res: &TestResources,
    sim: &Simulator,
    cfg: BrokerConfig,
    enrichment: bool,
) -> Handler {
    let enricher =
        enrichment.then(|| Enricher::with_broker(Arc::new(broker(res, sim, cfg)), api(sim)));
    EventHandler::new(
        AnalyticsStore::new(res.dynamodb.clone(), res.analytics_table.clone()),
        KpiConfig::default(),
        enricher,
        sim.clock(),
    )
}
