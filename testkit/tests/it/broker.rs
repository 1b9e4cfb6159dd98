//! The token protocol against moto (DynamoDB, Secrets Manager) and the
//! simulator, over real HTTP.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use genesys::GenesysClient;
use genesys::IssuedToken;
use lambda_support::Redacted;
use testkit::aws::TestResources;
use testkit::sim::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FaultSide, Faults, Policies, RateScope, SimClock,
    SimConfig, Simulator, TokenThrottle,
};
use testkit::traffic::{self, TrafficConfig};
use token_broker::{
    BrokerConfig, BrokerError, GenesysTokenSource, SlotOutcome, TokenBroker, TokenStore, slot_for,
};
use token_store::{Acquire, NewToken};

use crate::common::{assert_logs_clean, capture_logs, eventually};

type Broker = TokenBroker<GenesysTokenSource>;

struct Fleet {
    sim: Simulator,
    res: TestResources,
    clock: Arc<SimClock>,
}

fn config(pool_size: usize) -> BrokerConfig {
    BrokerConfig {
        pool_size,
        wait_timeout: Duration::from_secs(20),
        ..BrokerConfig::default()
    }
}

impl Fleet {
    async fn new(policies: Policies) -> Self {
        Self::with_secret(policies, DEFAULT_CLIENT_SECRET).await
    }

    async fn with_secret(policies: Policies, secret_in_secrets_manager: &str) -> Self {
        capture_logs();
        let clock = Arc::new(SimClock::frozen_at(1_763_650_000_000));
        let sim = Simulator::start(SimConfig {
            policies,
            clock: clock.clone(),
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        let res = TestResources::create(DEFAULT_CLIENT_ID, secret_in_secrets_manager)
            .await
            .expect("moto resources");
        Self { sim, res, clock }
    }

    fn api(&self) -> GenesysClient {
        testkit::product::api(&self.sim)
    }

    /// One container's broker.
    fn broker(&self, cfg: BrokerConfig) -> Broker {
        testkit::product::broker(&self.res, &self.sim, cfg)
    }

    fn brokers(&self, n: usize, cfg: &BrokerConfig) -> Vec<Arc<Broker>> {
        (0..n).map(|_| Arc::new(self.broker(cfg.clone()))).collect()
    }

    async fn done(self) {
        assert_logs_clean(&self.sim, &[]);
        self.res.delete().await.expect("cleanup");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_refreshers_and_two_hundred_readers_on_an_empty_table_make_one_token_request() {
    let fleet = Fleet::new(Policies::default()).await;
    // Slow the token endpoint so everyone races while the one fetch is in flight.
    fleet.sim.set_faults(
        FaultSide::Token,
        Faults {
            latency_ms: 300,
            ..Faults::default()
        },
    );
    // The double answers this 220-way stampede (about a thousand requests)
    // on one core shared with other tests: a few seconds alone, tens on a
    // loaded CI machine. What is tested is single flight, not speed, so the
    // readers' wait is bounded generously.
    let cfg = BrokerConfig {
        wait_timeout: Duration::from_secs(300),
        ..config(1)
    };
    let refreshers = fleet.brokers(20, &cfg);
    let readers = fleet.brokers(200, &cfg);
    let gate = Arc::new(tokio::sync::Barrier::new(220));
    let mut ticks = Vec::new();
    for r in refreshers {
        let gate = gate.clone();
        ticks.push(tokio::spawn(async move {
            gate.wait().await;
            r.tick().await
        }));
    }
    let mut reads = Vec::new();
    for r in readers {
        let gate = gate.clone();
        reads.push(tokio::spawn(async move {
            gate.wait().await;
            r.token(0).await
        }));
    }
    let mut refreshed = 0;
    for t in ticks {
        let report = t.await.expect("task");
        refreshed += report.refreshed();
        assert_eq!(report.failed(), 0, "{report:?}");
    }
    let mut seen = std::collections::BTreeSet::new();
    for r in reads {
        let t = r.await.expect("task").expect("every reader gets a token");
        assert_eq!(t.version, 1);
        seen.insert(t.token.expose().to_string());
    }
    let c = fleet.sim.counters();
    assert_eq!(
        c.token_requests, 1,
        "exactly one token request reached Genesys"
    );
    assert_eq!(c.max_token_requests_in_flight, 1);
    assert_eq!(seen.len(), 1, "all readers got the same token");
    assert!(
        refreshed <= 1,
        "at most one refresher published ({refreshed})"
    );
    fleet.done().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_item_of_another_identity_under_this_key_is_never_served_or_replaced() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let fleet = Fleet::new(Policies::default()).await;
    let ours = TokenStore::new(
        fleet.res.dynamodb.clone(),
        fleet.res.token_table.clone(),
        &fleet.res.secret_id,
    );
    let now = fleet.clock.now_ms();
    let s = |v: &str| AttributeValue::S(v.to_string());
    let n = |v: i64| AttributeValue::N(v.to_string());
    // Slot 0: another identity's item; slot 1: an item with no identity.
    for (slot, identity) in [(0, Some("org-2#arn:aws:secretsmanager:other")), (1, None)] {
        let mut put = fleet
            .res
            .dynamodb
            .put_item()
            .table_name(&fleet.res.token_table)
            .item("pk", s(&ours.key(slot)))
            .item("access_token", s("foreign-token"))
            .item("version", n(1))
            .item("expires_at", n(now + 3_600_000))
            .item("refresh_at", n(now + 3_000_000));
        if let Some(id) = identity {
            put = put.item("identity", s(id));
        }
        put.send().await.expect("put by hand");
    }
    let broker = fleet.broker(config(2));
    for slot in [0, 1] {
        match broker.token(slot).await {
            Err(BrokerError::Store(token_broker::StoreError::ForeignItem { key, .. })) => {
                assert_eq!(key, ours.key(slot));
            }
            other => panic!("slot {slot}: expected a refusal, got {other:?}"),
        }
        assert!(
            broker.replace_rejected(slot, 1).await.is_err(),
            "not taken over after a 401 either"
        );
    }
    let report = broker.tick().await;
    assert_eq!(report.failed(), 2, "{report:?}");
    assert_eq!(
        fleet.sim.counters().token_requests,
        0,
        "nothing fetched to overwrite them"
    );
    for slot in [0, 1] {
        let raw = fleet
            .res
            .dynamodb
            .get_item()
            .table_name(&fleet.res.token_table)
            .key("pk", s(&ours.key(slot)))
            .send()
            .await
            .expect("get");
        let item = raw.item().expect("still there");
        assert_eq!(item.get("access_token"), Some(&s("foreign-token")));
        assert!(item.get("stale_version").is_none(), "not marked stale");
    }
    assert_logs_clean(&fleet.sim, &["foreign-token"]);
    fleet.done().await;
}

/// Every container asks every slot once, all at once.
async fn every_slot_from_every_container(
    containers: &[Arc<Broker>],
    slots: usize,
) -> Vec<Result<token_broker::SlotToken, BrokerError>> {
    join_all(
        containers
            .iter()
            .flat_map(|b| (0..slots).map(move |slot| b.token(slot))),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_over_the_token_endpoints_limit_backs_off_together_and_recovers_after_the_window() {
    for shape in [
        TokenThrottle::InvalidRequest400,
        TokenThrottle::TooManyRequests429,
    ] {
        // Two logins a minute for a pool of four slots, ten containers.
        let fleet = Fleet::new(Policies {
            token_rate_limit_per_min: Some(2),
            token_throttle: shape,
            ..Policies::default()
        })
        .await;
        // Waits bounded generously: the property is who fetches, not speed.
        let cfg = BrokerConfig {
            wait_timeout: Duration::from_secs(300),
            ..config(4)
        };
        let containers = fleet.brokers(10, &cfg);
        let store = TokenStore::new(
            fleet.res.dynamodb.clone(),
            fleet.res.token_table.clone(),
            &fleet.res.secret_id,
        );
        for round in 0..2 {
            let got = every_slot_from_every_container(&containers, 4).await;
            let served: std::collections::BTreeSet<usize> =
                got.iter().flatten().map(|t| t.slot).collect();
            assert_eq!(
                served.len(),
                2,
                "{shape:?} round {round}: two slots got a token"
            );
            for e in got.iter().filter_map(|r| r.as_ref().err()) {
                let throttled = matches!(
                    e,
                    BrokerError::BackingOff { .. }
                        | BrokerError::Source {
                            source: token_broker::SourceError::RateLimited { .. },
                            ..
                        }
                );
                assert!(
                    throttled,
                    "{shape:?}: read as rate limiting, not a refusal: {e}"
                );
            }
            let c = fleet.sim.counters();
            assert_eq!(
                (c.token_requests, c.token_rate_limited),
                (4, 2),
                "{shape:?} round {round}: one request per slot, none while backing off"
            );
        }
        let now = fleet.clock.now_ms();
        for slot in 0..4 {
            let item = store.read(slot).await.expect("read").expect("item");
            if item.token.is_some() {
                continue;
            }
            assert_eq!(item.last_error_code.as_deref(), Some("rate_limited"));
            let wait = item.next_attempt_at.unwrap_or(0) - now;
            let least = token_broker::THROTTLED_LOGIN_WAIT.as_millis() as i64;
            assert!(
                (least..=60_000).contains(&wait),
                "{shape:?}: a throttle backs off for about the window, not the permanent {} s ({wait} ms)",
                cfg.backoff_max.as_secs()
            );
        }

        fleet.clock.advance(Duration::from_secs(60));
        let got = every_slot_from_every_container(&containers, 4).await;
        assert!(
            got.iter().all(Result::is_ok),
            "{shape:?}: every slot recovered"
        );
        let c = fleet.sim.counters();
        assert_eq!((c.token_requests, c.tokens_issued), (6, 4), "{shape:?}");
        fleet.done().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lease_holder_is_taken_over_after_the_lease_and_its_late_publish_is_fenced() {
    let fleet = Fleet::new(Policies::default()).await;
    let cfg = config(2);

    // Slot 0: the holder's task is aborted while its token request is in flight.
    fleet.sim.set_faults(
        FaultSide::Token,
        Faults {
            latency_ms: 60_000,
            ..Faults::default()
        },
    );
    let doomed = Arc::new(fleet.broker(cfg.clone()));
    let task = {
        let b = doomed.clone();
        tokio::spawn(async move { b.refresh_if_needed(0).await })
    };
    eventually(
        Duration::from_secs(20),
        "the holder's token request is in flight",
        || async { fleet.sim.counters().token_requests_in_flight == 1 },
    )
    .await;
    task.abort();
    let _ = task.await;
    fleet.sim.set_faults(FaultSide::Token, Faults::default());
    let survivor = fleet.broker(cfg.clone());
    assert_eq!(
        survivor.refresh_if_needed(0).await.expect("no error"),
        None,
        "the lease is still live"
    );
    fleet.clock.advance(cfg.lease + Duration::from_secs(1));
    let t = survivor
        .refresh_if_needed(0)
        .await
        .expect("refresh")
        .expect("took over after the lease lapsed");
    assert_eq!(t.version, 1);

    // Slot 1: a writer that acquired, stalled past its lease, then publishes late.
    let store = TokenStore::new(
        fleet.res.dynamodb.clone(),
        fleet.res.token_table.clone(),
        &fleet.res.secret_id,
    );
    let now = fleet.clock.now_ms();
    let Acquire::Won(stale_lease) = store
        .try_acquire(1, "stalled-writer", now, now + 600_000, 30_000)
        .await
        .expect("acquire")
    else {
        panic!("an empty slot must be acquirable");
    };
    fleet.clock.advance(Duration::from_secs(31));
    let newer = survivor
        .refresh_if_needed(1)
        .await
        .expect("refresh")
        .expect("took over");
    assert_eq!(newer.version, 1);
    let late = Redacted::new("late-token-from-the-stalled-writer");
    let now = fleet.clock.now_ms();
    let refused = store
        .publish(
            &stale_lease,
            NewToken {
                access_token: &late,
                token_type: "bearer",
                expires_at: now + 86_400_000,
                refresh_at: now + 86_000_000,
            },
            now,
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(token_broker::StoreError::LeaseLost { slot: 1 })
        ),
        "{refused:?}"
    );
    let item = store.read(1).await.expect("read").expect("item");
    assert_eq!(item.version, 1);
    assert_eq!(
        item.token.as_ref().map(|t| t.expose().to_string()),
        Some(newer.token.expose().to_string())
    );
    assert!(
        store
            .record_failure(&stale_lease, 0, "unavailable", "late")
            .await
            .is_err(),
        "a lost lease cannot release either"
    );
    fleet.done().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_costs_the_fleet_one_token_request_and_each_call_exactly_one_retry() {
    let fleet = Fleet::new(Policies::default()).await;
    let cfg = config(1);
    let readers = fleet.brokers(20, &cfg);
    for r in &readers {
        r.token(0).await.expect("warm");
    }
    assert_eq!(fleet.sim.counters().token_requests, 1);
    assert_eq!(fleet.sim.revoke_all(), 1);
    let before = fleet.sim.counters();
    let api = fleet.api();
    let results = join_all(readers.iter().map(|r| {
        let api = api.clone();
        async move { call_me(r, &api).await }
    }))
    .await;
    for r in &results {
        let (_, retried) = r.as_ref().expect("every affected call succeeds");
        assert!(*retried, "every affected call was retried once");
    }
    let after = fleet.sim.counters();
    assert_eq!(
        after.token_requests - before.token_requests,
        1,
        "single-flight recovery"
    );
    assert_eq!(
        after.unauthorized_total - before.unauthorized_total,
        20,
        "one 401 per affected call"
    );
    assert_eq!(
        after.api_calls - before.api_calls,
        40,
        "each call ran at most twice"
    );

    let again = join_all(readers.iter().map(|r| {
        let api = api.clone();
        async move { call_me(r, &api).await }
    }))
    .await;
    assert!(again.iter().all(|r| matches!(r, Ok((_, false)))));
    assert_eq!(
        fleet.sim.counters().unauthorized_total,
        after.unauthorized_total
    );
    fleet.done().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_idle_spell_the_refresher_replaces_the_dead_token_before_any_reader_sees_a_401() {
    let fleet = Fleet::new(Policies {
        idle_timeout_s: Some(900),
        ..Policies::default()
    })
    .await;
    let cfg = config(1);
    let refresher = fleet.broker(cfg.clone());
    assert_eq!(refresher.tick().await.refreshed(), 1);
    let readers = fleet.brokers(10, &cfg);
    let api = fleet.api();
    for r in &readers {
        let (_, retried) = call_me(r, &api).await.expect("call");
        assert!(!retried);
    }
    fleet.clock.advance(Duration::from_secs(1_000));
    let report = refresher.tick().await;
    assert_eq!(
        report.slots[0].outcome,
        SlotOutcome::Refreshed { reason: "dead" },
        "{report:?}"
    );
    assert_eq!(report.slots[0].version, Some(2));
    let unauthorized = fleet.sim.counters().unauthorized_total;
    for r in &readers {
        let (_, retried) = call_me(r, &api).await.expect("call");
        assert!(!retried, "no reader needed a retry");
    }
    assert_eq!(
        fleet.sim.counters().unauthorized_total,
        unauthorized,
        "no 401 reached a reader"
    );
    assert_eq!(fleet.sim.counters().token_requests, 2);
    fleet.done().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_endpoint_outage_keeps_the_current_token_serving_and_backs_off_fleet_wide() {
    let fleet = Fleet::new(Policies {
        token_lifetime_s: 3_600,
        ..Policies::default()
    })
    .await;
    let cfg = config(1);
    let brokers = fleet.brokers(25, &cfg);
    assert_eq!(brokers[0].tick().await.refreshed(), 1);
    let first = brokers[0].token(0).await.expect("token");
    // Due for replacement (a 3,600 s token: 360 s before expiry), then the
    // endpoint starts failing.
    fleet.clock.advance(Duration::from_secs(3_250));
    fleet.sim.set_faults(
        FaultSide::Token,
        Faults {
            errors_5xx: u32::MAX,
            ..Faults::default()
        },
    );
    let before = fleet.sim.counters().token_requests;
    let mut attempts = 0;
    for _ in 0..30 {
        let results = join_all(brokers.iter().enumerate().map(|(i, b)| async move {
            if i < 5 {
                b.tick().await;
            }
            b.token(0).await
        }))
        .await;
        for r in results {
            attempts += 1;
            assert_eq!(
                r.expect("the current token keeps serving").version,
                first.version
            );
        }
        fleet.clock.advance(Duration::from_secs(10));
    }
    let during = fleet.sim.counters().token_requests - before;
    println!("token requests during a 5-minute outage: {during} for {attempts} reads");
    // Without the shared backoff every tick and reader would try: 750 attempts.
    assert!(
        during > 0 && during <= 45,
        "token requests during the outage: {during} for {attempts} reads"
    );

    fleet.sim.set_faults(FaultSide::Token, Faults::default());
    fleet.clock.advance(cfg.backoff_max);
    assert_eq!(
        brokers[0].tick().await.refreshed(),
        1,
        "recovers once the endpoint is back"
    );
    let recovered = brokers[1]
        .replace_rejected(0, first.version)
        .await
        .expect("new token");
    assert_eq!(recovered.version, first.version + 1);
    fleet.done().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_is_a_clear_error_naming_the_secret_without_a_retry_storm() {
    let wrong = "wrong-secret-5d1c0a9e";
    let fleet = Fleet::with_secret(Policies::default(), wrong).await;
    let cfg = config(1);
    let report = fleet.broker(cfg.clone()).tick().await;
    let SlotOutcome::Failed { error } = &report.slots[0].outcome else {
        panic!("expected a failure: {report:?}");
    };
    assert!(
        error.contains(&fleet.res.secret_id),
        "names the secret: {error}"
    );
    assert!(error.contains("invalid_client"), "{error}");
    assert!(
        !error.contains(wrong) && !error.contains(DEFAULT_CLIENT_SECRET),
        "{error}"
    );
    assert_eq!(
        fleet.sim.counters().token_requests,
        1,
        "invalid_client is not retried"
    );

    let others = fleet.brokers(20, &cfg);
    for b in &others {
        b.tick().await;
        match b.token(0).await {
            Err(BrokerError::BackingOff { last_error, .. }) => {
                assert!(last_error.contains(&fleet.res.secret_id))
            }
            other => panic!("expected the shared backoff, got {other:?}"),
        }
    }
    assert_eq!(
        fleet.sim.counters().token_requests,
        1,
        "the fleet honours the shared backoff"
    );

    // Fix the secret; after the backoff the next tick recovers.
    fleet
        .res
        .secrets
        .put_secret_value()
        .secret_id(&fleet.res.secret_id)
        .secret_string(serde_json::json!({"clientId": DEFAULT_CLIENT_ID, "clientSecret": DEFAULT_CLIENT_SECRET}).to_string())
        .send()
        .await
        .expect("rotate");
    fleet
        .clock
        .advance(cfg.backoff_max + Duration::from_secs(1));
    let fixed = fleet.broker(cfg.clone()).tick().await;
    assert_eq!(fixed.refreshed(), 1, "{fixed:?}");
    assert_logs_clean(&fleet.sim, &[wrong]);
    fleet.done().await;
}

/// `GET /api/v2/tokens/me` with slot 0's token, through the broker's one-retry path.
async fn call_me(
    broker: &Broker,
    api: &GenesysClient,
) -> Result<(serde_json::Value, bool), token_broker::CallError<genesys::ApiError>> {
    broker
        .call(0, |t| {
            let api = api.clone();
            async move { api.get_json(&t, "/api/v2/tokens/me").await }
        })
        .await
}

async fn load(fleet: &Fleet, pool: usize, calls: usize) -> (u64, u64) {
    let t = traffic::generate(&TrafficConfig {
        minutes: 5,
        ..TrafficConfig::default()
    });
    fleet.sim.register_conversations(t.sim_conversations());
    let cfg = config(pool);
    let refresher = fleet.broker(cfg.clone());
    let tokens_before = fleet.sim.counters().token_requests;
    assert_eq!(refresher.tick().await.refreshed(), pool);
    let broker = fleet.broker(cfg);
    let api = fleet.api();
    let before = fleet.sim.counters();
    let ids: Vec<String> = t.conversations.iter().map(|c| c.id.clone()).collect();
    let mut rate_limited = 0;
    for chunk in (0..calls).collect::<Vec<_>>().chunks(50) {
        let results = join_all(chunk.iter().map(|i| {
            let id = ids[i % ids.len()].clone();
            let (api, broker) = (api.clone(), &broker);
            async move {
                broker
                    .call(slot_for(&id, pool), |t| {
                        let (api, id) = (api.clone(), id.clone());
                        async move {
                            api.get_json(&t, &format!("/api/v2/conversations/{id}"))
                                .await
                        }
                    })
                    .await
            }
        }))
        .await;
        for r in results {
            match r {
                Ok(_) => {}
                Err(token_broker::CallError::Call(genesys::ApiError::RateLimited { .. })) => {
                    rate_limited += 1
                }
                Err(e) => panic!("unexpected: {e}"),
            }
        }
    }
    let after = fleet.sim.counters();
    assert_eq!(after.token_requests - tokens_before, pool as u64);
    (
        rate_limited,
        after.api_rate_limited - before.api_rate_limited,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_four_tokens_carries_a_load_that_one_token_cannot() {
    // 900 calls in one simulated minute: three times one token's 300/min.
    let pooled = Fleet::new(Policies::default()).await;
    let (client_429, sim_429) = load(&pooled, 4, 900).await;
    assert_eq!(
        (client_429, sim_429),
        (0, 0),
        "a pool of 4 stays under every token's limit"
    );
    let per_token = &pooled.sim.counters().api_calls_per_token;
    assert_eq!(
        per_token.len(),
        4,
        "all four tokens carried load: {per_token:?}"
    );
    pooled.done().await;

    let single = Fleet::new(Policies::default()).await;
    let (client_429, sim_429) = load(&single, 1, 900).await;
    assert_eq!(client_429, 600, "one token gets 429s past 300/min");
    assert_eq!(sim_429, 600);
    single.done().await;

    // The other reading of the limit: one budget per OAuth client.
    let per_client = Fleet::new(Policies {
        api_rate_scope: RateScope::PerClient,
        ..Policies::default()
    })
    .await;
    let (client_429, sim_429) = load(&per_client, 4, 900).await;
    assert_eq!(
        (client_429, sim_429),
        (600, 600),
        "counted per client, a pool of 4 buys nothing"
    );
    per_client.done().await;
}

/// One row of the pool-by-scope table: `per_min` new lookups a simulated
/// minute for `minutes`, through the product's broker and client. A lookup
/// refused with a 429 waits for the next minute, as a pending session waits
/// for the next sweep, and a slot that got a 429 sends nothing more that
/// minute (its `Retry-After`). Four lookups are in flight at a time, as the
/// sweeper serves four orgs at once.
async fn backlog_row(scope: RateScope, pool: usize, per_min: usize, minutes: i64) -> String {
    let fleet = Fleet::new(Policies {
        api_rate_scope: scope,
        ..Policies::default()
    })
    .await;
    let cfg = config(pool);
    let refresher = fleet.broker(cfg.clone());
    refresher.tick().await;
    let broker = fleet.broker(cfg);
    let api = fleet.api();
    let mut queue: std::collections::VecDeque<(i64, usize)> = Default::default();
    let (mut waits, mut refused, mut next_id) = (Vec::new(), 0u64, 0usize);
    let mut minute = 0i64;
    while minute < minutes || (!queue.is_empty() && minute < minutes * 4) {
        if minute < minutes {
            queue.extend((0..per_min).map(|i| (minute, next_id + i)));
            next_id += per_min;
        }
        let mut throttled = std::collections::BTreeSet::new();
        // Conversation ids are UUIDs: spread like them, not like 0, 1, 2.
        let key = |id: usize| format!("{:016x}{:016x}", mix(id as u64), mix(!(id as u64)));
        let mut later = std::collections::VecDeque::new();
        let work: Vec<_> = queue.drain(..).collect();
        for chunk in work.chunks(4) {
            let sent: Vec<_> = chunk
                .iter()
                .filter(|(_, id)| !throttled.contains(&slot_for(&key(*id), pool)))
                .copied()
                .collect();
            later.extend(chunk.iter().filter(|c| !sent.contains(c)));
            let results = join_all(sent.iter().map(|&(born, id)| {
                let (api, broker) = (api.clone(), &broker);
                let slot = slot_for(&key(id), pool);
                async move {
                    let r = broker
                        .call(slot, |t| {
                            let api = api.clone();
                            async move { api.get_json(&t, "/api/v2/tokens/me").await }
                        })
                        .await;
                    (born, id, slot, r)
                }
            }))
            .await;
            for (born, id, slot, r) in results {
                match r {
                    Ok(_) => waits.push(minute - born),
                    Err(token_broker::CallError::Call(genesys::ApiError::RateLimited {
                        ..
                    })) => {
                        refused += 1;
                        throttled.insert(slot);
                        later.push_back((born, id));
                    }
                    Err(e) => panic!("unexpected: {e}"),
                }
            }
        }
        queue = later;
        fleet.clock.advance(Duration::from_secs(60));
        minute += 1;
    }
    waits.sort_unstable();
    let pct = |p: usize| {
        waits
            .get(waits.len().saturating_sub(1) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    let row = format!(
        "| {} | {pool} | {per_min} | {} | {refused} | {} | {} | {} | {} |",
        match scope {
            RateScope::PerToken => "per token",
            RateScope::PerClient => "per OAuth client",
        },
        per_min as i64 * minutes,
        waits.len(),
        pct(50),
        pct(100),
        queue.len()
    );
    fleet.done().await;
    row
}

/// SplitMix64's finalizer: a fixed, well-spread id for a number.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The pool-by-scope table of BENCHMARKS.md: `cargo test -p testkit --test
/// it broker::what_a_pool_buys -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: the pool-by-scope table of BENCHMARKS.md"]
async fn what_a_pool_buys_under_each_reading_of_the_limit() {
    println!(
        "| scope | pool | lookups/min | lookups | 429s | served | wait p50 (min) | wait max (min) | left |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for scope in [RateScope::PerToken, RateScope::PerClient] {
        for (per_min, pool) in [(600, 1), (600, 2), (600, 4), (1_000, 4), (1_000, 8)] {
            println!("{}", backlog_row(scope, pool, per_min, 10).await);
        }
    }
}

#[test]
fn tokens_and_secrets_never_show_in_debug_or_display() {
    let secret = "s3cr3t-token-value-0042";
    let token = Redacted::new(secret);
    let issued = IssuedToken {
        access_token: token.clone(),
        token_type: "bearer".into(),
        expires_in: 60,
    };
    let slot = token_broker::SlotToken {
        slot: 0,
        version: 3,
        token: token.clone(),
        expires_at: 0,
    };
    let item = token_broker::TokenItem {
        token: Some(token.clone()),
        ..Default::default()
    };
    let creds = genesys::ClientCredentials {
        client_id: "id".into(),
        client_secret: token.clone(),
    };
    for text in [
        format!("{token:?}"),
        format!("{token}"),
        format!("{issued:?}"),
        format!("{slot:?}"),
        format!("{item:?}"),
        format!("{creds:?}"),
        format!("{:#?}", (issued.clone(), slot.clone())),
    ] {
        assert!(!text.contains(secret), "{text}");
    }
}

/// Token requests a refresher needs over `run_s` for `slots` slots when
/// every token must be replaced `margin_s` before it expires and all tokens
/// die every `revoke_every_s`: the floor any compliant refresher meets.
fn minimum_requests(
    run_s: u64,
    lifetime_s: u64,
    margin_s: u64,
    revoke_every_s: Option<u64>,
    slots: u64,
) -> u64 {
    let useful = lifetime_s.saturating_sub(margin_s).max(1);
    let segment = revoke_every_s.unwrap_or(run_s).min(run_s);
    let mut total = 0;
    let mut start = 0;
    while start < run_s {
        let len = segment.min(run_s - start);
        total += len.div_ceil(useful);
        start += segment;
    }
    total * slots
}

struct LifetimeRun {
    requests: u64,
    unauthorized: u64,
    failed_calls: u64,
    calls: u64,
}

/// `minutes` simulated: the refresher every minute, two readers per slot
/// calling the API every 10 s, and all tokens revoked every `revoke_every_s`.
async fn run_lifetime(minutes: u64, lifetime_s: u64, revoke_every_s: Option<u64>) -> LifetimeRun {
    let fleet = Fleet::new(Policies {
        token_lifetime_s: lifetime_s,
        ..Policies::default()
    })
    .await;
    let slots = 3;
    let cfg = config(slots);
    let refresher = fleet.broker(cfg.clone());
    let readers = fleet.brokers(2 * slots, &cfg);
    let api = fleet.api();
    let before = fleet.sim.counters();
    let (mut calls, mut failed_calls) = (0, 0);
    for step in 0..(minutes * 6) {
        let t = step * 10;
        if t % 60 == 0 {
            refresher.tick().await;
        }
        if let Some(every) = revoke_every_s
            && t > 0
            && t % every == 0
        {
            fleet.sim.revoke_all();
        }
        let results = join_all(readers.iter().enumerate().map(|(i, r)| {
            let api = api.clone();
            async move {
                r.call(i % slots, |tok| {
                    let api = api.clone();
                    async move { api.get_json(&tok, "/api/v2/tokens/me").await }
                })
                .await
            }
        }))
        .await;
        calls += results.len() as u64;
        failed_calls += results.iter().filter(|r| r.is_err()).count() as u64;
        fleet.clock.advance(Duration::from_secs(10));
    }
    let after = fleet.sim.counters();
    fleet.done().await;
    LifetimeRun {
        requests: after.token_requests - before.token_requests,
        unauthorized: after.unauthorized_total - before.unauthorized_total,
        failed_calls,
        calls,
    }
}

/// One lifetime over `minutes`, revoked every `revoke_every_s` or never: 0
/// failed calls, no 401 without revocations, and token requests at most 10%
/// over the floor of a refresher that survives one missed run. Returns the
/// row BENCHMARKS.md shows.
async fn near_the_minimum(minutes: u64, lifetime_s: u64, revoke_every_s: Option<u64>) -> String {
    let run_s = minutes * 60;
    // Two refresher periods (60 s) and the 30 s skew: the least margin that
    // survives one missed refresher run.
    let safe_margin_s = 2 * 60 + 30;
    let r = run_lifetime(minutes, lifetime_s, revoke_every_s).await;
    let absolute = minimum_requests(run_s, lifetime_s, 0, revoke_every_s, 3);
    let safe = minimum_requests(
        run_s,
        lifetime_s,
        safe_margin_s.min(lifetime_s / 2),
        revoke_every_s,
        3,
    );
    assert_eq!(
        r.failed_calls, 0,
        "lifetime {lifetime_s}, revocations {revoke_every_s:?}: every call succeeds"
    );
    assert!(
        r.requests * 10 <= safe * 11,
        "lifetime {lifetime_s}, revocations {revoke_every_s:?}: {} token requests, minimum {safe}",
        r.requests
    );
    if revoke_every_s.is_none() {
        assert_eq!(
            r.unauthorized, 0,
            "lifetime {lifetime_s}: no 401 without revocations"
        );
    }
    format!(
        "| {lifetime_s} | {} | {} | {absolute} | {safe} | {} | {} / {} |",
        revoke_every_s.map_or("none".to_string(), |s| format!("every {} min", s / 60)),
        r.requests,
        r.unauthorized,
        r.failed_calls,
        r.calls,
    )
}

/// Every lifetime, with and without revocations every 7 minutes, over
/// `minutes` (see `near_the_minimum`); returns the table.
async fn token_requests_stay_near_the_minimum(minutes: u64) -> String {
    let mut rows = Vec::new();
    for lifetime_s in [300, 900, 3_600, 86_400] {
        for revoke_every_s in [None, Some(7 * 60)] {
            rows.push(near_the_minimum(minutes, lifetime_s, revoke_every_s).await);
        }
    }
    format!(
        "| lifetime s | revocations | token requests | absolute minimum | minimum with a 2-period margin | 401s | failed calls |\n| --- | --- | --- | --- | --- | --- | --- |\n{}",
        rows.join("\n")
    )
}

/// 25 minutes hold five 300 s lifetimes, a 900 s token's first refresh and
/// three revocations; one 3600 s run of 65 minutes adds that lifetime's
/// refresh. Every case of the floor, at about a third of the volume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_stay_near_the_minimum_for_every_lifetime() {
    println!("{}", token_requests_stay_near_the_minimum(25).await);
    println!("{}", near_the_minimum(65, 3_600, None).await);
}

/// The 95-minute table of BENCHMARKS.md (a volume figure, not a property
/// the suite needs): `cargo test -p testkit --test it
/// broker::token_requests_over_95 -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: the 95-minute table of BENCHMARKS.md"]
async fn token_requests_over_95_minutes_by_lifetime() {
    println!("{}", token_requests_stay_near_the_minimum(95).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_minutes_without_the_token_table_fail_no_call_while_the_cached_token_is_valid() {
    let mut fleet = Fleet::new(Policies::default()).await;
    // 330 failing reads: at the SDK's own backoffs, about 10 minutes of waiting.
    fleet.res = fleet.res.with_fast_retries();
    let cfg = config(1);
    let refresher = fleet.broker(cfg.clone());
    assert_eq!(refresher.tick().await.refreshed(), 1);
    let readers = fleet.brokers(10, &cfg);
    let api = fleet.api();
    for r in &readers {
        call_me(r, &api).await.expect("warm");
    }
    let switch = |unavailable| {
        testkit::aws::set_double(
            &fleet.res.dynamodb,
            &fleet.res.token_table,
            testkit::aws::DoubleSwitches {
                unavailable,
                ..Default::default()
            },
        )
    };
    switch(true).await.expect("table down");
    let before = fleet.sim.counters();
    let mut calls = 0;
    // Past the readers' one-minute cache, every read of the item fails.
    for _ in 0..30 {
        let tick = refresher.tick().await;
        assert_eq!(tick.failed(), 1, "the refresher cannot read the item");
        for r in &readers {
            let (_, retried) = call_me(r, &api)
                .await
                .expect("the cached token keeps serving");
            assert!(!retried);
            calls += 1;
        }
        fleet.clock.advance(Duration::from_secs(10));
    }
    assert_eq!(calls, 300);
    let during = fleet.sim.counters();
    assert_eq!(
        during.token_requests, before.token_requests,
        "no token requests"
    );
    assert_eq!(
        during.unauthorized_total, before.unauthorized_total,
        "no 401s"
    );
    switch(false).await.expect("table back");
    for r in &readers {
        call_me(r, &api).await.expect("after");
    }
    fleet.done().await;
}
