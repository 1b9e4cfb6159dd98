//! Many orgs (issue 13, first part): the tenant registry against moto, and
//! one refresher ticking every enabled org at once, each org against its
//! own simulator (its own region), with isolation: a bad secret and
//! revocations in other orgs leave a healthy org's figures exactly as in a
//! single-org run.

use std::sync::Arc;
use std::time::Duration;

use testkit::aws::TestResources;
use testkit::sim::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Policies, SimClock, SimConfig, Simulator,
};
use token_broker::fleet::OrgFleet;
use token_broker::{BrokerConfig, SlotOutcome, Tenant, TenantRegistry};

const START: i64 = 1_795_187_000_000;

fn org(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// An org's secret where the template's functions may read it (`<stack>/org/...`).
async fn secret(res: &TestResources, name: &str, client_id: &str, client_secret: &str) -> String {
    let operator = testkit::orgs::multi_org(res)
        .expect("MultiOrg")
        .as_role(testkit::iam::Role::Operator);
    operator
        .secrets
        .create_secret()
        .name(testkit::orgs::org_secret_name(
            res,
            &testkit::aws::unique_name(name),
        ))
        .secret_string(
            serde_json::json!({"clientId": client_id, "clientSecret": client_secret}).to_string(),
        )
        .send()
        .await
        .expect("secret")
        .arn()
        .unwrap_or_default()
        .to_string()
}

/// Org `n`, enabled, with an OAuth client of its own on `sim` and its
/// secret (named after `name`) where the functions may read it.
async fn org_on(res: &TestResources, sim: &Simulator, n: u32, name: &str) -> Tenant {
    let (id, secret_value) = (format!("client-{n}"), format!("secret-{n}"));
    sim.add_client(&id, &secret_value);
    Tenant {
        org_id: org(n),
        region: "us-east-1".into(),
        secret_arn: secret(res, name, &id, &secret_value).await,
        pool_size: 1,
        enabled: true,
        display_name: String::new(),
        base_url: Some(sim.base_url()),
        offboarded: false,
    }
}

/// The refresher's fleet of a MultiOrg deployment, signing as its role.
fn fleet(res: &TestResources, clock: Arc<SimClock>) -> OrgFleet {
    let res = testkit::orgs::multi_org(res).expect("MultiOrg");
    testkit::orgs::org_fleet(&res.as_role(testkit::iam::Role::TokenRefresher), clock)
}

async fn sim(clock: &Arc<SimClock>, lifetime_s: u64) -> Simulator {
    Simulator::start(SimConfig {
        policies: Policies {
            token_lifetime_s: lifetime_s,
            ..Policies::default()
        },
        clock: clock.clone(),
        ..SimConfig::default()
    })
    .await
    .expect("simulator")
}

#[tokio::test]
async fn the_registry_adds_lists_disables_and_removes_orgs() {
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let registry = testkit::orgs::operator_registry(&res).expect("operator");
    for n in 1..=3 {
        registry
            .put(&Tenant {
                org_id: org(n),
                region: "eu-west-1".into(),
                secret_arn: format!("arn:aws:secretsmanager:eu-west-1:123456789012:secret:org-{n}"),
                pool_size: 1,
                enabled: true,
                display_name: format!("Org {n}"),
                base_url: None,
                offboarded: false,
            })
            .await
            .expect("put");
    }
    let all = registry.list().await.expect("list");
    assert_eq!(
        all.iter().map(|t| t.org_id.clone()).collect::<Vec<_>>(),
        vec![org(1), org(2), org(3)]
    );
    assert!(registry.set_enabled(&org(2), false).await.expect("disable"));
    assert!(
        !registry
            .get(&org(2))
            .await
            .expect("get")
            .expect("there")
            .enabled
    );
    assert!(
        !registry.set_enabled(&org(9), false).await.expect("unknown"),
        "no such org"
    );
    assert!(registry.remove(&org(3)).await.expect("remove"));
    assert!(!registry.remove(&org(3)).await.expect("again"));
    assert_eq!(registry.list().await.expect("list").len(), 2);
    res.delete().await.expect("cleanup");
}

/// Ticks `tenants` once a simulated minute for `minutes`, revoking `revoke`'s
/// tokens every 10 minutes.
async fn run(
    fleet: &OrgFleet,
    clock: &Arc<SimClock>,
    tenants: &[Tenant],
    minutes: u32,
    revoke: Option<&Simulator>,
) -> Vec<Vec<token_broker::fleet::OrgTick>> {
    let mut ticks = Vec::new();
    for minute in 0..minutes {
        if minute > 0
            && minute % 10 == 0
            && let Some(s) = revoke
        {
            s.revoke_all();
        }
        ticks.push(fleet.tick_all(tenants, 8, Duration::from_secs(20)).await);
        clock.advance(Duration::from_secs(60));
    }
    ticks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_secret_and_revocations_in_other_orgs_leave_a_healthy_org_as_it_was_alone() {
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let registry = testkit::orgs::operator_registry(&res).expect("operator");
    let tenant = |n: u32, secret_arn: &str, sim: &Simulator| Tenant {
        org_id: org(n),
        region: "us-east-1".into(),
        secret_arn: secret_arn.to_string(),
        pool_size: 1,
        enabled: true,
        display_name: format!("Org {n}"),
        base_url: Some(sim.base_url()),
        offboarded: false,
    };

    // Alone: org 1 for 30 minutes.
    let clock = Arc::new(SimClock::frozen_at(START));
    let alone = sim(&clock, 3_600).await;
    let good = secret(&res, "org1-alone", DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).await;
    let solo = [tenant(1, &good, &alone)];
    run(&fleet(&res, clock.clone()), &clock, &solo, 30, None).await;
    let alone_counters = alone.counters();

    // Together: org 1 again (a fresh simulator and secret), org 2 with a
    // wrong secret, org 3 revoked every 10 minutes, each in its own region.
    let clock = Arc::new(SimClock::frozen_at(START));
    let (s1, s2, s3) = (
        sim(&clock, 3_600).await,
        sim(&clock, 1_800).await,
        sim(&clock, 7_200).await,
    );
    let good = secret(&res, "org1", DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).await;
    let wrong = secret(&res, "org2", DEFAULT_CLIENT_ID, "not-the-secret").await;
    let revoked = secret(&res, "org3", DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).await;
    let tenants = vec![
        tenant(1, &good, &s1),
        tenant(2, &wrong, &s2),
        tenant(3, &revoked, &s3),
    ];
    for t in &tenants {
        registry.put(t).await.expect("register");
    }
    let listed = registry.list().await.expect("list");
    let fleet = fleet(&res, clock.clone());
    let ticks = run(&fleet, &clock, &listed, 30, Some(&s3)).await;

    let (c1, c2, c3) = (s1.counters(), s2.counters(), s3.counters());
    println!(
        "token requests: alone {}, together {} (bad secret {}, revoked {}); 401s alone {}, together {}",
        alone_counters.token_requests,
        c1.token_requests,
        c2.token_requests,
        c3.token_requests,
        alone_counters.unauthorized_total,
        c1.unauthorized_total
    );
    assert_eq!(
        c1.token_requests, alone_counters.token_requests,
        "the healthy org's token requests"
    );
    assert_eq!(
        c1.unauthorized_total, alone_counters.unauthorized_total,
        "the healthy org's 401s"
    );
    assert_eq!(c1.unauthorized_total, 0);
    for tick in &ticks {
        let one = tick
            .iter()
            .find(|t| t.org_id == org(1))
            .expect("org 1 ticked");
        let report = one.result.as_ref().expect("org 1's tick finished");
        assert!(
            report
                .slots
                .iter()
                .all(|s| !matches!(s.outcome, SlotOutcome::Failed { .. }))
        );
    }
    // The bad org is reported, not retried in a storm: its shared backoff
    // holds it to a few requests in 30 minutes.
    let failed_ticks = ticks
        .iter()
        .flatten()
        .filter(|t| t.org_id == org(2))
        .filter(|t| match &t.result {
            Ok(r) => r.failed() > 0,
            Err(_) => true,
        })
        .count();
    assert!(failed_ticks >= 1, "the bad secret is reported");
    // A rejected client waits the broker's longest backoff between tries:
    // at most one request per `backoff_max` (and the first).
    let most = 30 * 60 / BrokerConfig::default().backoff_max.as_secs().max(1) + 1;
    assert!(
        c2.token_requests <= most,
        "no storm: {} token requests in 30 minutes, at most {most}",
        c2.token_requests
    );
    // The revoked org recovers after each revocation: its first token and
    // one per revocation.
    assert_eq!(c3.token_requests, 3, "one token request per revocation");
    res.delete().await.expect("cleanup");
}

/// Refresher tick duration for 1, 10 and 100 orgs (one simulator, one
/// OAuth client per org): the first tick fetches every org's token, the
/// next only checks them. Printed for BENCHMARKS.md; no timing assertion.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresher_ticks_for_1_10_and_100_orgs() {
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    println!(
        "| orgs | token requests | first tick (fetch) ms | second tick (check) ms | slowest org ms |"
    );
    for n in [1u32, 10, 100] {
        let clock = Arc::new(SimClock::frozen_at(START));
        let s = sim(&clock, 3_600).await;
        let mut tenants = Vec::new();
        for i in 0..n {
            let name = format!("bench-{n}-{i}");
            tenants.push(org_on(&res, &s, 1000 * n + i, &name).await);
        }
        let fleet = fleet(&res, clock.clone());
        let t = std::time::Instant::now();
        let first = fleet.tick_all(&tenants, 16, Duration::from_secs(30)).await;
        let first_ms = t.elapsed().as_millis();
        clock.advance(Duration::from_secs(60));
        let t = std::time::Instant::now();
        let second = fleet.tick_all(&tenants, 16, Duration::from_secs(30)).await;
        let second_ms = t.elapsed().as_millis();
        for tick in first.iter().chain(&second) {
            let r = tick.result.as_ref().expect("every org's tick finished");
            assert_eq!(r.failed(), 0, "{}", tick.org_id);
        }
        assert_eq!(
            s.counters().token_requests,
            u64::from(n),
            "one token per org"
        );
        let slowest = first.iter().map(|t| t.elapsed_ms).max().unwrap_or(0);
        println!(
            "| {n} | {} | {first_ms} | {second_ms} | {slowest} |",
            s.counters().token_requests
        );
    }
    res.delete().await.expect("cleanup");
}

#[tokio::test]
async fn a_new_org_is_checked_before_it_is_enabled_and_each_problem_is_named() {
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let clock = Arc::new(SimClock::frozen_at(START));
    let s = sim(&clock, 3_600).await;
    let fleet = fleet(&res, clock.clone());
    let base = |n: u32, secret_arn: String, base_url: String| Tenant {
        org_id: org(n),
        region: "us-east-1".into(),
        secret_arn,
        pool_size: 1,
        enabled: false,
        display_name: String::new(),
        base_url: Some(base_url),
        offboarded: false,
    };
    let within = Duration::from_secs(20);
    let good = secret(&res, "v-good", DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET).await;
    fleet
        .validate(&base(1, good.clone(), s.base_url()), within)
        .await
        .expect("a good org passes");
    let wrong = secret(&res, "v-wrong", DEFAULT_CLIENT_ID, "nope").await;
    let e = fleet
        .validate(&base(2, wrong, s.base_url()), within)
        .await
        .expect_err("a wrong secret");
    assert!(e.problem.contains("rejected the OAuth client"), "{e}");
    assert!(
        !e.to_string().contains("nope"),
        "the secret's value is never in the error"
    );
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-secret".to_string();
    let e = fleet
        .validate(&base(3, missing, s.base_url()), within)
        .await
        .expect_err("a missing secret");
    assert!(e.problem.contains("could not be read"), "{e}");
    let e = fleet
        .validate(&base(4, good.clone(), "http://127.0.0.1:9".into()), within)
        .await
        .expect_err("nobody there");
    assert!(e.problem.contains("could not be reached"), "{e}");
    let e = fleet
        .validate(&base(5, good, "http://api.example.com".into()), within)
        .await
        .expect_err("plain http");
    assert!(e.problem.contains("https://"), "{e}");
    res.delete().await.expect("cleanup");
}

/// Issue 13's end-to-end check: three orgs in one deployment (one with a
/// wrong secret, one revoked every 10 minutes), events routed by their
/// `source`, tokens, enrichment and counts per org; each org compared with
/// a run of the same org and traffic alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_orgs_count_exactly_once_each_and_match_their_single_org_runs() {
    use testkit::orgs::{self, OrgRunOptions, OrgSpec};
    let opts = OrgRunOptions {
        sessions_per_minute: 8,
        minutes: 30,
        ..OrgRunOptions::default()
    };
    let specs: Vec<OrgSpec> = (0..3).map(|n| OrgSpec::nth(n, true)).collect();
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let together = orgs::run(&res, &specs, &opts).await.expect("three orgs");
    println!("together:\n{}", orgs::table(&together));
    let mut alone = Vec::new();
    for spec in [&specs[0], &specs[2]] {
        let solo_res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
            .await
            .expect("moto");
        let mut r = orgs::run(&solo_res, std::slice::from_ref(spec), &opts)
            .await
            .expect("alone");
        alone.push(r.remove(0));
        solo_res.delete().await.expect("cleanup");
    }
    println!("alone:\n{}", orgs::table(&alone));

    let (healthy, bad, revoked) = (&together[0], &together[1], &together[2]);
    for (with_others, solo) in [(healthy, &alone[0]), (revoked, &alone[1])] {
        assert!(
            with_others.exactly_once && with_others.enrichment_complete,
            "{}: {:?}",
            with_others.name,
            with_others.differences
        );
        assert_eq!(with_others.rejected + with_others.dead_lettered, 0);
        assert_eq!(
            (with_others.token_requests, with_others.unauthorized),
            (solo.token_requests, solo.unauthorized),
            "{}: token requests and 401s as when alone",
            with_others.name
        );
        assert_eq!(
            (with_others.exactly_once, with_others.events),
            (solo.exactly_once, solo.events)
        );
    }
    assert_eq!(healthy.token_requests, 1);
    assert_eq!(healthy.unauthorized, 0);
    assert!(revoked.revocations >= 2, "revoked every 10 minutes");
    // The bad org: its events are still counted exactly once (counting needs
    // no token), its failure is reported on every tick, and its token
    // requests stay within one per longest backoff.
    assert!(bad.counts_exact, "{:?}", bad.differences);
    assert_eq!(bad.rejected + bad.dead_lettered, 0);
    assert!(bad.failed_ticks >= 1);
    let failure = bad.last_failure.clone().unwrap_or_default();
    assert!(
        failure.contains("rejected") || failure.contains("invalid_client"),
        "{failure}"
    );
    assert!(!failure.contains("not-the-secret"), "no secret in reports");
    let minutes = (opts.minutes + 60) as u64;
    let most = minutes * 60 / BrokerConfig::default().backoff_max.as_secs() + 2;
    assert!(
        bad.token_requests <= most,
        "no storm: {} requests, at most {most}",
        bad.token_requests
    );
    res.delete().await.expect("cleanup");
}

/// An event from an org the registry does not have, or has disabled, is
/// rejected with the reason and counted nowhere.
#[tokio::test]
async fn events_of_unknown_or_disabled_orgs_are_rejected_and_counted_nowhere() {
    use va_handler::{EventHandler, HandleError, OrgDirectory, Tenancy};
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let clock = Arc::new(SimClock::frozen_at(START));
    let registry = testkit::orgs::operator_registry(&res).expect("operator");
    let known = Tenant {
        org_id: org(1),
        region: "us-east-1".into(),
        secret_arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:x".into(),
        pool_size: 1,
        enabled: false,
        display_name: "Org 1".into(),
        base_url: None,
        offboarded: false,
    };
    registry.put(&known).await.expect("register");
    // conversation-events as its role deploys it with MultiOrg.
    let role = testkit::orgs::multi_org(&res)
        .expect("MultiOrg")
        .as_role(testkit::iam::Role::ConversationEvents);
    let handler = EventHandler::new(
        testkit::product::store(&role),
        Default::default(),
        clock.clone(),
    )
    .with_tenancy(Tenancy::Registry(Arc::new(OrgDirectory::new(
        TenantRegistry::new(role.dynamodb.clone(), res.tenant_table.clone()),
        clock.clone(),
    ))));
    let event = |org: &str| {
        let mut e = testkit::fixtures::named("flow-end-contained.json");
        e["source"] = serde_json::json!(format!("aws.partner/genesys.com/cloud/{org}/va"));
        e
    };
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(10);
    for (org_id, why) in [(org(1), "disabled"), (org(2), "not in the tenant registry")] {
        match handler.handle(&event(&org_id), deadline()).await {
            Err(HandleError::Rejected(r)) => {
                assert_eq!(r.field, "source");
                assert!(r.problem.contains(why), "{}", r.problem);
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
    // Not a partner source at all.
    let mut bad = event(&org(1));
    bad["source"] = serde_json::json!("my.app");
    assert!(matches!(
        handler.handle(&bad, deadline()).await,
        Err(HandleError::Rejected(_))
    ));
    // Enabled (after the cache's minute), it counts under its own keys only.
    registry.set_enabled(&org(1), true).await.expect("enable");
    clock.advance(Duration::from_millis(
        va_handler::tenancy::REGISTRY_CACHE_MS as u64,
    ));
    let handled = handler
        .handle(&event(&org(1)), deadline())
        .await
        .expect("counted");
    assert_eq!(handled.org_id, org(1));
    let items = res
        .dynamodb
        .scan()
        .table_name(&res.analytics_table)
        .send()
        .await
        .expect("scan");
    assert!(!items.items().is_empty());
    for item in items.items() {
        let pk = item["pk"].as_s().expect("pk");
        assert!(pk.starts_with(&format!("org#{}#", org(1))), "{pk}");
    }
    res.delete().await.expect("cleanup");
}

/// Two orgs' traffic run into one deployment, and its dashboard's sign-in:
/// what the dashboard's isolation tests start from.
struct TwoOrgs {
    res: TestResources,
    opts: testkit::orgs::OrgRunOptions,
    reports: Vec<testkit::orgs::OrgReport>,
    a: String,
    b: String,
    sign_in: testkit::sign_in::LocalSignIn,
}

impl TwoOrgs {
    async fn run() -> Self {
        use testkit::orgs::{self, OrgRunOptions, OrgSpec};
        let opts = OrgRunOptions {
            sessions_per_minute: 5,
            minutes: 3,
            ..OrgRunOptions::default()
        };
        let specs: Vec<OrgSpec> = (0..2).map(|n| OrgSpec::nth(n, false)).collect();
        let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
            .await
            .expect("moto");
        let reports = orgs::run(&res, &specs, &opts).await.expect("two orgs");
        let sign_in = testkit::sign_in::LocalSignIn::create(&res.config)
            .await
            .expect("cognito");
        Self {
            a: specs[0].org_id.clone(),
            b: specs[1].org_id.clone(),
            res,
            opts,
            reports,
            sign_in,
        }
    }

    /// The dashboard as deployed: each org read through its tagged reader.
    fn dashboard(&self) -> va_analytics::dashboard::DashboardApi {
        testkit::product::dashboard(
            &testkit::orgs::multi_org(&self.res).expect("MultiOrg"),
            Arc::new(SimClock::frozen_at(self.opts.start_ms + 3_600_000)),
            1,
            va_analytics::dashboard::auth::Verifier::new(self.sign_in.auth.clone()),
        )
    }

    /// Sessions started in `org`'s hour, read from the store directly.
    async fn started(&self, org: &str) -> i64 {
        let (from, to) = (self.opts.start_ms, self.opts.start_ms + 3_600_000);
        testkit::product::store(&self.res)
            .for_org(org)
            .query(&va_analytics::Scope::Org, from, to)
            .await
            .expect("query")
            .iter()
            .map(|c| c.counters.get("started").copied().unwrap_or(0))
            .sum()
    }
}

/// Tenant isolation at the dashboard: a viewer signed in for org A (Cognito
/// group `org-<A>`) reads A's figures, equal to A's store, and is refused
/// org B's, over HTTP with real (moto) Cognito tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_viewer_of_one_org_is_refused_another_orgs_figures() {
    let two = TwoOrgs::run().await;
    let (res, opts, sign_in, a, b) = (&two.res, &two.opts, &two.sign_in, &two.a, &two.b);
    assert!(
        two.reports.iter().all(|r| r.exactly_once),
        "{:?}",
        two.reports
    );
    let viewer_a = sign_in
        .add_viewer("viewer-a", &[&format!("org-{a}")])
        .await
        .expect("viewer a");
    let nobody = sign_in.add_viewer("no-org", &[]).await.expect("viewer");
    // As in AWS: the dashboard's role, each org read through a session of
    // the org reader role tagged with that org, which the double authorizes
    // against the template's trust and bucket policies.
    let api = Arc::new(two.dashboard());
    let (addr, _server) = testkit::stack::serve_api(api, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    let http = reqwest::Client::new();
    let range = format!("from={}&to={}", opts.start_ms, opts.start_ms + 3_600_000);
    let get = |token: String, query: String| {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("http://{addr}/api/dashboard?{query}"))
                .bearer_auth(token)
                .send()
                .await
                .expect("request");
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.expect("json"))
        }
    };
    let token_a = viewer_a.access_token().await.expect("sign in a");
    // Org A: its own figures, equal to its store.
    let (status, own) = get(token_a.clone(), format!("{range}&org={a}")).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["org"], a.as_str());
    let started = two.started(a).await;
    assert!(started > 0);
    assert_eq!(own["totals"]["started"], started);
    // Named alone: the only org granted.
    let (status, implicit) = get(token_a.clone(), range.clone()).await;
    assert_eq!((status, &implicit["org"]), (200, &serde_json::json!(a)));
    // Org B: refused, whatever the spelling.
    for org in [b.clone(), b.to_uppercase()] {
        let (status, refused) = get(token_a.clone(), format!("{range}&org={org}")).await;
        assert_eq!(status, 403, "{refused}");
        assert_eq!(refused["error"], "org_forbidden");
        assert!(refused.get("totals").is_none());
    }
    // A key-shaped org id is not an org.
    let (status, bad) = get(token_a.clone(), format!("{range}&org=agg%23s00")).await;
    assert_eq!((status, bad["error"].as_str()), (400, Some("org_invalid")));
    // A viewer with no org group sees nothing.
    let token_none = nobody.access_token().await.expect("sign in");
    let (status, none) = get(token_none, format!("{range}&org={a}")).await;
    assert_eq!(
        (status, none["error"].as_str()),
        (403, Some("org_forbidden"))
    );
    // The picker lists A only.
    let orgs_listed: serde_json::Value = http
        .get(format!("http://{addr}/api/orgs"))
        .bearer_auth(&token_a)
        .send()
        .await
        .expect("orgs")
        .json()
        .await
        .expect("json");
    assert_eq!(
        orgs_listed,
        serde_json::json!({"multi_org": true, "orgs": [{"org_id": a, "name": "Org 1"}]})
    );
    res.delete().await.expect("cleanup");
}

/// The vendor's staff (group `orgs-all`) read every registered org without
/// a group per org, each through that org's tagged reader; a customer's
/// viewer of org A stays refused org B, and a group that only looks like
/// the vendor's grants nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vendors_staff_read_every_org_and_a_customers_viewer_still_only_theirs() {
    use va_analytics::dashboard::access::ALL_ORGS_GROUP;
    let two = TwoOrgs::run().await;
    let (res, opts, sign_in, a, b) = (&two.res, &two.opts, &two.sign_in, &two.a, &two.b);
    let staff = sign_in
        .add_viewer("staff", &[ALL_ORGS_GROUP])
        .await
        .expect("staff");
    let viewer_a = sign_in
        .add_viewer("viewer-a", &[&format!("org-{a}"), "orgs-all-readonly"])
        .await
        .expect("viewer a");
    let api = two.dashboard();
    let range = |org: &str| {
        vec![
            ("from".to_string(), opts.start_ms.to_string()),
            ("to".to_string(), (opts.start_ms + 3_600_000).to_string()),
            ("org".to_string(), org.to_string()),
        ]
    };
    let bearer = |t: String| format!("Bearer {t}");
    let staff_token = bearer(staff.access_token().await.expect("sign in"));
    for org in [a, b] {
        let r = api
            .reply("GET", "/api/dashboard", &range(org), Some(&staff_token))
            .await;
        assert_eq!(r.status, 200, "{org}: {}", r.body);
        let body: serde_json::Value = serde_json::from_str(&r.body).expect("json");
        let stored = two.started(org).await;
        assert!(stored > 0);
        assert_eq!(body["totals"]["started"], stored, "{org}: its own figures");
    }
    let listed = api.reply("GET", "/api/orgs", &[], Some(&staff_token)).await;
    let listed: serde_json::Value = serde_json::from_str(&listed.body).expect("json");
    let ids: Vec<&str> = listed["orgs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["org_id"].as_str())
        .collect();
    assert_eq!(ids, vec![a.as_str(), b.as_str()], "every registered org");
    // Named, or it is not clear which of all the orgs to show.
    let r = api
        .reply("GET", "/api/dashboard", &range("")[..2], Some(&staff_token))
        .await;
    assert_eq!(r.status, 400);
    // An unregistered org: not found, not another org's figures.
    let r = api
        .reply(
            "GET",
            "/api/dashboard",
            &range(&org(999_999)),
            Some(&staff_token),
        )
        .await;
    assert_eq!(r.status, 404);
    // The customer's viewer: their org only, whatever else their groups say.
    let token_a = bearer(viewer_a.access_token().await.expect("sign in"));
    let r = api
        .reply("GET", "/api/dashboard", &range(b), Some(&token_a))
        .await;
    assert_eq!(r.status, 403);
    let r = api
        .reply("GET", "/api/dashboard", &range(a), Some(&token_a))
        .await;
    assert_eq!(r.status, 200);
    assert!(res.denials().is_empty(), "{:?}", res.denials());
    res.delete().await.expect("cleanup");
}

/// 20 orgs whose token endpoint hangs, listed first, among 150: a tick cut
/// short by the invocation's deadline reports the orgs it did not reach
/// (not as failed), and the container's next tick starts with them, so
/// every healthy org is refreshed within two ticks and none fails because
/// of another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_hung_orgs_among_150_never_keep_a_healthy_org_waiting_two_ticks() {
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let clock = Arc::new(SimClock::frozen_at(START));
    let (healthy, hung) = (sim(&clock, 3_600).await, sim(&clock, 3_600).await);
    hung.set_faults(
        testkit::sim::FaultSide::Token,
        testkit::sim::Faults {
            latency_ms: 600_000,
            ..testkit::sim::Faults::default()
        },
    );
    let mut tenants = Vec::new();
    for i in 0..150u32 {
        let s = if i < 20 { &hung } else { &healthy };
        tenants.push(org_on(&res, s, 5000 + i, &format!("fair-{i}")).await);
    }
    let fleet = fleet(&res, clock.clone());
    // The function's share per org with the default 30 s lease, and an
    // invocation too short for the hung orgs and everyone else in one go.
    let per_org = Duration::from_secs(29);
    let within = |s| tokio::time::Instant::now() + Duration::from_secs(s);
    let first = fleet
        .tick_all_within(&tenants, 16, per_org, within(30), 0)
        .await;
    // Room for a loaded machine: what matters is that nobody was lost.
    let second = fleet
        .tick_all_within(&tenants, 16, per_org, within(90), 0)
        .await;
    let not_reached = |t: &token_broker::fleet::OrgTick| {
        t.result
            .as_ref()
            .is_err_and(|e| e == token_broker::fleet::NOT_REACHED)
    };
    let missed: Vec<&str> = first
        .iter()
        .filter(|t| not_reached(t))
        .map(|t| t.org_id.as_str())
        .collect();
    assert!(!missed.is_empty(), "the first tick ran out of time");
    for (i, (a, b)) in first.iter().zip(&second).enumerate().skip(20) {
        assert!(
            a.result.is_ok() || not_reached(a),
            "healthy org {i} failed in the first tick: {:?}",
            a.result
        );
        let report = b.result.as_ref().unwrap_or_else(|e| {
            panic!("healthy org {i} was not refreshed by the second tick: {e}")
        });
        assert_eq!(report.failed(), 0, "{}", b.org_id);
    }
    assert_eq!(
        healthy.counters().tokens_issued,
        130,
        "every healthy org has its token"
    );
    res.delete().await.expect("cleanup");
}

/// The sweeper's half of the fair fan-out: 20 orgs whose Platform API
/// hangs, first in the sweep's order, among 150, each with bot sessions
/// waiting for enrichment. A sweep cut short by its deadline reports the
/// orgs it did not reach (not as failed), the container's next sweep starts
/// with them, and every healthy org's session is enriched within two
/// sweeps; the hung orgs' sessions stay pending, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_hung_orgs_among_150_never_keep_a_healthy_orgs_sessions_waiting_two_sweeps() {
    use futures::StreamExt;
    use va_enrichment::orgs::{NOT_REACHED, OrgSweeps};
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let res = testkit::orgs::multi_org(&res).expect("MultiOrg");
    // A minute the rotation starts at org 0 (minute % 150 == 0): the hung
    // orgs come first.
    let now = (START / 60_000 / 150 + 1) * 150 * 60_000;
    let clock = Arc::new(SimClock::frozen_at(now));
    let (healthy, hung) = (sim(&clock, 86_400).await, sim(&clock, 86_400).await);
    let registry = testkit::orgs::operator_registry(&res).expect("operator");
    let mut tenants = Vec::new();
    for i in 0..150u32 {
        let s = if i < 20 { &hung } else { &healthy };
        let t = org_on(&res, s, 6000 + i, &format!("sweep-{i}")).await;
        registry.put(&t).await.expect("register");
        tenants.push(t);
    }
    // A few conversations per org, ended half an hour ago, counted.
    let handler = testkit::orgs::org_handler(&res, clock.clone());
    let counted = futures::stream::iter(tenants.iter().enumerate().map(|(i, t)| {
        let traffic = testkit::traffic::generate(&testkit::traffic::TrafficConfig {
            seed: 100 + i as u64,
            sessions_per_minute: 3,
            minutes: 1,
            start_ms: now - 1_800_000,
            org_id: t.org_id.clone(),
            // The two bot flows (not the IVR): every conversation has a session.
            flows: testkit::traffic::TrafficConfig::default()
                .flows
                .into_iter()
                .filter(|f| f.flow_type.contains("BOT"))
                .collect(),
            ..testkit::traffic::TrafficConfig::default()
        });
        (if i < 20 { &hung } else { &healthy }).register_conversations(traffic.sim_conversations());
        let handler = &handler;
        async move {
            for e in &traffic.events {
                handler
                    .handle(
                        &e.envelope,
                        tokio::time::Instant::now() + Duration::from_secs(60),
                    )
                    .await
                    .expect("counted");
            }
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<()>>();
    counted.await;
    let store = testkit::product::store(&res);
    let waiting = |org: String| {
        let store = store.for_org(&org);
        async move { store.pending(i64::MAX, 10).await.expect("pending").len() }
    };
    let mut before = Vec::new();
    for t in &tenants {
        let n = waiting(t.org_id.clone()).await;
        assert!(n >= 1, "{} has a session waiting", t.org_id);
        before.push(n);
    }
    // Tokens first, as the refresher leaves them; then the API hangs.
    fleet(&res, clock.clone())
        .tick_all(&tenants, 16, Duration::from_secs(120))
        .await;
    hung.set_faults(
        testkit::sim::FaultSide::Api,
        testkit::sim::Faults {
            latency_ms: 600_000,
            ..testkit::sim::Faults::default()
        },
    );
    let role = res.as_role(testkit::iam::Role::EnrichmentSweeper);
    let sweeps = OrgSweeps::new(
        Arc::new(testkit::orgs::org_fleet(&role, clock.clone())),
        va_analytics::AnalyticsStore::new(role.analytics.clone(), res.analytics_table.clone()),
        clock.clone(),
        va_enrichment::SweepConfig::default(),
    );
    let within = |s| tokio::time::Instant::now() + Duration::from_secs(s);
    let first = sweeps.sweep_all(&tenants, 4, within(30)).await;
    // Room for a loaded machine: what matters is that nobody was lost.
    let second = sweeps.sweep_all(&tenants, 4, within(120)).await;
    let not_reached = |r: &Result<_, String>| r.as_ref().is_err_and(|e| e == NOT_REACHED);
    assert!(
        first.iter().any(|s| not_reached(&s.result)),
        "the first sweep ran out of time"
    );
    for (i, (a, b)) in first.iter().zip(&second).enumerate().skip(20) {
        assert!(
            a.result.is_ok() || not_reached(&a.result),
            "healthy org {i} failed in the first sweep: {:?}",
            a.result
        );
        assert!(
            b.result.is_ok(),
            "healthy org {i} in the second sweep: {:?}",
            b.result
        );
        assert_eq!(
            waiting(b.org_id.clone()).await,
            0,
            "healthy org {i}'s sessions are enriched"
        );
    }
    for (t, n) in tenants.iter().zip(&before).take(20) {
        assert_eq!(
            waiting(t.org_id.clone()).await,
            *n,
            "a hung org's sessions wait, not lost"
        );
    }
    res.delete().await.expect("cleanup");
}

/// `org add` counts the account's event buses as the operator (the
/// `EventBusCount` statement) and warns from 90% of the quota; a role
/// without the statement is refused by the double as EventBridge refuses.
#[tokio::test]
async fn org_add_counts_the_event_buses_and_warns_near_the_quota() {
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let res = testkit::orgs::multi_org(&res).expect("MultiOrg");
    let as_role = |role| aws_sdk_eventbridge::Client::new(&res.as_role(role).config);
    let count = va_admin::buses::count_event_buses(&as_role(testkit::iam::Role::Operator))
        .await
        .expect("the operator may count");
    assert!(count >= 1, "the default bus at least");
    assert!(va_admin::buses::quota_warning(count, 100).is_none());
    let warning = va_admin::buses::quota_warning(count, count).expect("at the quota");
    assert!(warning.contains("Service Quotas"), "{warning}");
    let refused = va_admin::buses::count_event_buses(&as_role(testkit::iam::Role::DashboardApi))
        .await
        .expect_err("the dashboard may not");
    assert!(refused.contains("AccessDenied"), "{refused}");
    res.delete().await.expect("cleanup");
}
