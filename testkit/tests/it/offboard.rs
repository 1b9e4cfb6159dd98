//! Onboarding and offboarding an org (issue 25): `va-admin org onboard`'s
//! secret step and `va-admin org offboard`, run as the operator's policy
//! allows, against two orgs counted into one deployment.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use testkit::aws::TestResources;
use testkit::iam::Role;
use testkit::orgs::{self, OrgRunOptions, OrgSpec};
use testkit::sim::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimClock};
use va_admin::offboard::{Offboard, offboard};
use va_analytics::Applied;
use va_analytics::org_items::ORG_SHARD;

type Item = BTreeMap<String, String>;

/// Every item of the analytics table whose key starts `org#<org>#`, as
/// text, by key (read as the test, with all the powers).
async fn items_of(res: &TestResources, org: &str) -> BTreeMap<(String, String), Item> {
    let prefix = format!("org#{org}#");
    let mut out = BTreeMap::new();
    for item in scan_all(res).await {
        let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        let (Some(pk), Some(sk)) = (text("pk"), text("sk")) else {
            continue;
        };
        if pk.starts_with(&prefix) {
            let fields = item
                .iter()
                .map(|(k, v)| (k.clone(), format!("{v:?}")))
                .collect();
            out.insert((pk, sk), fields);
        }
    }
    out
}

/// Every item of the analytics table, page by page.
async fn scan_all(
    res: &TestResources,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = res
            .dynamodb
            .scan()
            .table_name(&res.analytics_table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        out.extend(page.items().iter().cloned());
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return out;
        }
    }
}

/// Sends one event of the bus's org; returns how many messages its queue
/// then holds (delivery to an SQS target happens within `PutEvents`).
async fn send_and_count(res: &TestResources, bus: &str, queue: &str) -> usize {
    aws_sdk_eventbridge::Client::new(&res.config)
        .put_events()
        .entries(
            PutEventsRequestEntry::builder()
                .event_bus_name(bus)
                .source(bus)
                .detail_type("v2.detail.events.conversation.{id}.flow.end")
                .detail("{}")
                .build(),
        )
        .send()
        .await
        .expect("put events");
    let got = res
        .sqs
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    for m in got.messages() {
        res.sqs
            .delete_message()
            .queue_url(queue)
            .receipt_handle(m.receipt_handle().unwrap_or_default())
            .send()
            .await
            .expect("delete");
    }
    got.messages().len()
}

/// With two orgs counted and their buses wired: a dry run counts the
/// leaving org's items and changes nothing; the offboarding then disables
/// its rule (its events reach no target, so none is dead-lettered), deletes
/// every item of it by key and its token items, marks it offboarded (an
/// event still in flight is dropped, not counted, not dead-lettered), and
/// leaves every item of the other org exactly as it was. Every item of
/// both orgs carries its org tag, so the index finds them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offboarding_deletes_every_item_of_the_org_and_none_of_another_and_stops_its_events() {
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let res = orgs::multi_org(&res).expect("MultiOrg");
    let specs: Vec<OrgSpec> = (0..2).map(|n| OrgSpec::nth(n, false)).collect();
    let opts = OrgRunOptions {
        sessions_per_minute: 4,
        minutes: 10,
        ..OrgRunOptions::default()
    };
    orgs::run(&res, &specs, &opts).await.expect("two orgs");
    let (gone, kept) = (specs[0].org_id.clone(), specs[1].org_id.clone());
    let (gone_bus, gone_queue) = orgs::wire_org_bus(&res, &gone, "gone")
        .await
        .expect("wired");
    let (kept_bus, kept_queue) = orgs::wire_org_bus(&res, &kept, "kept")
        .await
        .expect("wired");

    let before_gone = items_of(&res, &gone).await;
    let before_kept = items_of(&res, &kept).await;
    let mut kinds = BTreeMap::<String, usize>::new();
    for ((pk, _), item) in before_gone.iter().chain(&before_kept) {
        assert!(item.contains_key(ORG_SHARD), "{pk} carries no org tag");
        let kind = pk.split('#').nth(2).unwrap_or_default().to_string();
        *kinds.entry(kind).or_default() += 1;
    }
    println!("items of both orgs by kind: {kinds:?}");
    for kind in ["agg", "event", "conv", "names"] {
        assert!(
            kinds.contains_key(kind),
            "the run wrote {kind} items: {kinds:?}"
        );
    }

    let operator = res.as_role(Role::Operator).config;
    let mut o = Offboard {
        org_id: gone.clone(),
        stack_name: res.stack_name.clone(),
        analytics_table: res.analytics_table.clone(),
        tenants_table: res.tenant_table.clone(),
        token_table: res.token_table.clone(),
        dry_run: true,
    };
    let dry = offboard(&operator, &o).await.expect("dry run");
    assert_eq!(dry.items.total(), before_gone.len(), "{:?}", dry.items);
    assert_eq!((dry.items.deleted, dry.token_slots_cleared), (0, 0));
    assert_eq!(
        dry.rules,
        [format!("{gone_bus}/{}-org-gone", res.stack_name)]
    );
    assert_eq!(
        items_of(&res, &gone).await,
        before_gone,
        "a dry run deletes nothing"
    );
    assert_eq!(
        send_and_count(&res, &gone_bus, &gone_queue).await,
        1,
        "still wired"
    );

    o.dry_run = false;
    let done = offboard(&operator, &o).await.expect("offboard");
    println!(
        "{}",
        serde_json::to_string_pretty(&done).unwrap_or_default()
    );
    assert_eq!(done.items.deleted, before_gone.len());
    assert!(
        items_of(&res, &gone).await.is_empty(),
        "every item of the org is gone"
    );
    assert_eq!(
        items_of(&res, &kept).await,
        before_kept,
        "no item of the other org changed"
    );
    assert_eq!(
        send_and_count(&res, &gone_bus, &gone_queue).await,
        0,
        "its rule is disabled"
    );
    assert_eq!(
        send_and_count(&res, &kept_bus, &kept_queue).await,
        1,
        "the other org's is not"
    );

    let registry = orgs::operator_registry(&res).expect("operator");
    let tenant = registry
        .get(&gone)
        .await
        .expect("get")
        .expect("the tombstone stays");
    assert!(tenant.offboarded && !tenant.enabled);
    let tokens = token_broker::TokenStore::new(
        res.dynamodb.clone(),
        res.token_table.clone(),
        &tenant.token_identity(),
    );
    assert!(
        tokens.read(0).await.expect("read").is_none(),
        "its token item is deleted"
    );

    // An event already on its way when the rule was disabled: dropped.
    let clock = Arc::new(SimClock::frozen_at(opts.start_ms));
    let handler = orgs::org_handler(&res, clock);
    let mut late = testkit::fixtures::named("flow-end-contained.json");
    late["source"] = serde_json::json!(gone_bus);
    let handled = handler
        .handle(&late, tokio::time::Instant::now() + Duration::from_secs(30))
        .await
        .expect("dropped, not rejected");
    assert_eq!(handled.applied, Applied::Dropped);
    assert!(
        items_of(&res, &gone).await.is_empty(),
        "nothing written for it"
    );

    // Nothing left to do: a second offboarding finds nothing.
    let again = offboard(&operator, &o).await.expect("again");
    assert_eq!(again.items.total(), 0);
    res.delete().await.expect("cleanup");
}

/// An org's bytes in the table by kind, and in the org index.
async fn storage_of(res: &TestResources, org: &str) -> (BTreeMap<String, u64>, u64) {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    fn size(v: &V) -> u64 {
        match v {
            V::S(s) => s.len() as u64,
            V::N(n) => n.len().div_ceil(2) as u64 + 1,
            V::Ss(v) => v.iter().map(|s| s.len() as u64).sum(),
            _ => 1,
        }
    }
    let prefix = format!("org#{org}#");
    let (mut bytes, mut index) = (BTreeMap::<String, u64>::new(), 0u64);
    for item in scan_all(res).await {
        let pk = item
            .get("pk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let Some(rest) = pk.strip_prefix(&prefix) else {
            continue;
        };
        let kind = rest.split('#').next().unwrap_or_default().to_string();
        let item_size: u64 = item.iter().map(|(k, v)| k.len() as u64 + size(v)).sum();
        *bytes.entry(kind).or_default() += item_size;
        let key = |k: &str| item.get(k).map_or(0, |v| k.len() as u64 + size(v));
        index += key("pk") + key("sk") + key(ORG_SHARD) + 100;
    }
    (bytes, index)
}

/// What the org tag costs (BENCHMARKS.md, "What the org index costs"): one
/// org at contact-center volume, then every index write its items caused,
/// per event. An item costs one index write when it is created and one
/// when it is deleted (a resolved pending enrichment); updates cost none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: the org index's cost in BENCHMARKS.md"]
async fn what_the_org_index_costs() {
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let res = orgs::multi_org(&res).expect("MultiOrg");
    let spec = OrgSpec::nth(0, false);
    let opts = OrgRunOptions {
        sessions_per_minute: 60,
        minutes: 20,
        ..OrgRunOptions::default()
    };
    let report = orgs::run(&res, std::slice::from_ref(&spec), &opts)
        .await
        .expect("one org")
        .remove(0);
    assert!(report.exactly_once, "{:?}", report.differences);
    let items = items_of(&res, &spec.org_id).await;
    let mut kinds = BTreeMap::<String, u64>::new();
    for (pk, _) in items.keys() {
        *kinds
            .entry(pk.split('#').nth(2).unwrap_or_default().to_string())
            .or_default() += 1;
    }
    // Storage, as DynamoDB sizes items (names and values; numbers about
    // half their digits), by kind; and the index's entries (their keys and
    // 100 bytes each: Developer Guide, "Global secondary indexes").
    let (bytes, index_bytes) = storage_of(&res, &spec.org_id).await;
    let total: u64 = bytes.values().sum();
    println!(
        "storage after {} minutes: {total} bytes in the table by kind {bytes:?}, {index_bytes} in the index; \
         per simulated day at this rate: {:.1} MB table, {:.1} MB index",
        opts.minutes,
        total as f64 * 1440.0 / f64::from(opts.minutes) / 1e6,
        index_bytes as f64 * 1440.0 / f64::from(opts.minutes) / 1e6
    );
    let left_pending = kinds.get("pending").copied().unwrap_or(0);
    let resolved = report.sessions.saturating_sub(left_pending);
    let index_writes = items.len() as u64 + 2 * resolved;
    println!(
        "{} events ({} deliveries), {} bot sessions: items by kind {kinds:?}; index writes {} \
         ({} item creations + 2 x {} resolved pending), {:.2} per event",
        report.events,
        report.deliveries,
        report.sessions,
        index_writes,
        items.len(),
        resolved,
        index_writes as f64 / report.events.max(1) as f64
    );
    res.delete().await.expect("cleanup");
}

/// `org onboard`'s secret step as the operator: it creates the org's secret
/// where the functions may read it, stores a new client in it later, checks
/// it when given none, and refuses one that holds no client; never a path
/// outside `<stack>/org/`.
#[tokio::test]
async fn onboarding_creates_replaces_or_checks_the_orgs_secret_under_the_stacks_prefix() {
    use va_admin::onboard::{OAuthClient, SecretAction, ensure_secret, secret_name};
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let res = orgs::multi_org(&res).expect("MultiOrg");
    let sm = aws_sdk_secretsmanager::Client::new(&res.as_role(Role::Operator).config);
    let org = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let name = secret_name(&res.stack_name, org);
    let client = |secret: &str| OAuthClient {
        client_id: "client-1".into(),
        client_secret: secret.into(),
    };
    let (arn, made) = ensure_secret(&sm, &name, Some(&client("first")), None)
        .await
        .expect("created");
    assert_eq!(made, SecretAction::Created);
    let (again, replaced) = ensure_secret(&sm, &name, Some(&client("second")), None)
        .await
        .expect("replaced");
    assert_eq!((replaced, &again), (SecretAction::Updated, &arn));
    let stored = res
        .secrets
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .expect("read")
        .secret_string()
        .unwrap_or_default()
        .to_string();
    assert!(
        stored.contains("second"),
        "the new client is the current value"
    );
    let (_, checked) = ensure_secret(&sm, &name, None, None)
        .await
        .expect("checked");
    assert_eq!(checked, SecretAction::Checked);

    let empty = secret_name(&res.stack_name, "1a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
    res.secrets
        .create_secret()
        .name(&empty)
        .secret_string("{}")
        .send()
        .await
        .expect("an empty secret");
    let refused = ensure_secret(&sm, &empty, None, None)
        .await
        .expect_err("no client");
    assert!(refused.contains("clientId"), "{refused}");
    let outside = ensure_secret(&sm, "elsewhere/org/x", Some(&client("s3cr3t")), None)
        .await
        .expect_err("outside the stack's prefix");
    assert!(outside.contains("AccessDenied"), "{outside}");
    assert!(!outside.contains("s3cr3t"), "no secret in errors");
    res.delete().await.expect("cleanup");
}
