//! Upgrades that lose nothing (issue 26): figures written in the first
//! layout (before sharding) read back the same after `va-admin migrate`,
//! run as the operator's policy allows; a second run moves nothing, and a
//! dry run changes nothing.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use testkit::aws::TestResources;
use testkit::iam::Role;
use testkit::sim::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use va_analytics::migrate::V1Migration;
use va_analytics::{AnalyticsStore, Scope};

const FLOWS: [&str; 2] = [
    "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c",
    "6b1e2d3c-4a5f-4e6d-9c7b-8a9f0e1d2c3b",
];
const START: i64 = 1_795_186_800_000;
const MINUTES: i64 = 90;

type Counters = BTreeMap<String, i64>;

/// A minute of the first layout: each flow's cell and the org's (the flows'
/// sums plus events without a flow), `active` stored as a counter.
fn v1_minute(m: i64) -> (BTreeMap<&'static str, Counters>, Counters) {
    let mut flows = BTreeMap::new();
    let mut org: Counters = BTreeMap::new();
    for (i, flow) in FLOWS.iter().enumerate() {
        let k = m + i as i64;
        let c: Counters = [
            ("started", k % 3 + 1),
            ("ended", k % 2 + 1),
            ("contained", k % 2),
            ("active", k % 4 + 1),
            ("duration_count", k % 2 + 1),
            ("duration_ms_sum", 30_000 * (k % 5 + 1)),
            ("d_le_60", k % 2 + 1),
            ("i#CheckOrderStatus", k % 2),
        ]
        .into_iter()
        .filter(|(_, v)| *v != 0)
        .map(|(n, v)| (n.to_string(), v))
        .collect();
        for (n, v) in &c {
            *org.entry(n.clone()).or_default() += v;
        }
        flows.insert(*flow, c);
    }
    // Events without a flow (customer.start/end), and sessions not in a
    // bot flow's cell.
    *org.entry("events".into()).or_default() += 7 + m % 3;
    *org.entry("active".into()).or_default() += m % 2;
    (flows, org)
}

async fn put(res: &TestResources, pk: String, minute: i64, c: &Counters) {
    let mut item: std::collections::HashMap<String, AttributeValue> = c
        .iter()
        .map(|(k, v)| (k.clone(), AttributeValue::N(v.to_string())))
        .collect();
    item.insert("pk".into(), AttributeValue::S(pk));
    item.insert(
        "sk".into(),
        AttributeValue::S(va_analytics::kpi::minute_sk(minute)),
    );
    res.dynamodb
        .put_item()
        .table_name(&res.analytics_table)
        .set_item(Some(item))
        .send()
        .await
        .expect("a layout-1 cell");
}

/// Per minute, what `scope` shows: its counters, `active` included.
async fn shown(store: &AnalyticsStore, scope: &Scope) -> BTreeMap<i64, Counters> {
    let to = START + (MINUTES - 1) * 60_000;
    store
        .query_breakdown(scope, START, to)
        .await
        .expect("read")
        .buckets
        .into_iter()
        .map(|b| (b.minute_ms, b.counters))
        .filter(|(_, c)| !c.is_empty())
        .collect()
}

#[tokio::test]
async fn the_first_layouts_figures_read_back_the_same_after_the_migration() {
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let mut want_org = BTreeMap::new();
    let mut want_flow: BTreeMap<&str, BTreeMap<i64, Counters>> = BTreeMap::new();
    for i in 0..MINUTES {
        let minute = START + i * 60_000;
        let (flows, org) = v1_minute(i);
        put(&res, "agg#org".into(), minute, &org).await;
        for (flow, c) in &flows {
            put(&res, format!("agg#flow#{flow}"), minute, c).await;
            want_flow
                .entry(*flow)
                .or_default()
                .insert(minute, c.clone());
        }
        want_org.insert(minute, org);
    }
    let reader = testkit::product::store(&res);
    assert!(
        shown(&reader, &Scope::Org).await.is_empty(),
        "before the migration the dashboard shows none of it"
    );

    let operator = res.as_role(Role::Operator);
    let store = AnalyticsStore::new(operator.analytics.clone(), res.analytics_table.clone());
    let migration = V1Migration::new(&store);
    let dry = migration.run(true).await.expect("dry run");
    assert_eq!(
        (dry.minutes, dry.cells, dry.migrated),
        (MINUTES as usize, 3 * MINUTES as usize, 0)
    );
    assert!(
        shown(&reader, &Scope::Org).await.is_empty(),
        "a dry run moves nothing"
    );

    let done = migration.run(false).await.expect("migration");
    assert_eq!(done.migrated, MINUTES as usize, "{done:?}");
    assert_eq!(
        shown(&reader, &Scope::Org).await,
        want_org,
        "the org's figures"
    );
    for flow in FLOWS {
        assert_eq!(
            shown(&reader, &Scope::Flow(flow.to_string())).await,
            want_flow[flow],
            "flow {flow}'s figures"
        );
    }
    let again = migration.run(false).await.expect("again");
    assert_eq!(
        (again.minutes, again.migrated),
        (0, 0),
        "nothing moves twice"
    );
    assert_eq!(shown(&reader, &Scope::Org).await, want_org);
    assert!(res.denials().is_empty(), "{:?}", res.denials());
    res.delete().await.expect("cleanup");
}

/// A release that meets a layout newer than it knows refuses: the handler
/// counts nothing and writes nothing beside it, and the dashboard answers
/// 503 naming both layouts. The migration records the layout it leaves and
/// never lowers a newer one.
#[tokio::test]
async fn a_newer_layout_is_refused_and_nothing_is_written_beside_it() {
    use std::sync::Arc;
    use va_analytics::layout::{self, LAYOUT, LAYOUT_PK};
    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let operator = res.as_role(Role::Operator);
    let op_store = AnalyticsStore::new(operator.analytics.clone(), res.analytics_table.clone());
    V1Migration::new(&op_store)
        .run(false)
        .await
        .expect("nothing to move");
    assert_eq!(layout::check(&op_store).await.expect("read"), Some(LAYOUT));

    // A later release upgraded the table.
    res.dynamodb
        .put_item()
        .table_name(&res.analytics_table)
        .item("pk", AttributeValue::S(LAYOUT_PK.into()))
        .item("sk", AttributeValue::S("version".into()))
        .item("layout", AttributeValue::N((LAYOUT + 1).to_string()))
        .send()
        .await
        .expect("a newer layout");
    let event = testkit::fixtures::named("flow-end-contained.json");
    let handler = va_handler::EventHandler::new(
        testkit::product::store(&res.as_role(Role::ConversationEvents)),
        Default::default(),
        Arc::new(testkit::sim::SimClock::frozen_at(START + 60_000)),
    );
    let refused = handler
        .handle(
            &event,
            tokio::time::Instant::now() + std::time::Duration::from_secs(30),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(va_handler::HandleError::Store(va_analytics::AnalyticsError::UnknownLayout { found, known }))
                if found == LAYOUT + 1 && known == LAYOUT
        ),
        "{refused:?}"
    );
    let items = res
        .dynamodb
        .scan()
        .table_name(&res.analytics_table)
        .send()
        .await
        .expect("scan");
    assert_eq!(
        items.items().len(),
        1,
        "the layout item alone: nothing written beside it"
    );

    let sign_in = testkit::sign_in::LocalSignIn::create(&res.config)
        .await
        .expect("cognito");
    let bearer = format!("Bearer {}", sign_in.access_token().await.expect("token"));
    let api = testkit::product::dashboard(
        &res,
        Arc::new(testkit::sim::SimClock::frozen_at(START + 3_600_000)),
        1,
        va_analytics::dashboard::auth::Verifier::new(sign_in.auth.clone()),
    );
    let q = [("minutes".to_string(), "60".to_string())];
    let reply = api.reply("GET", "/api/dashboard", &q, Some(&bearer)).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(
        reply.body.contains(&format!("layout {}", LAYOUT + 1)),
        "{}",
        reply.body
    );

    let migration = V1Migration::new(&op_store).run(false).await;
    assert!(migration.is_err(), "no migration over a newer layout");
    assert!(
        layout::check(&op_store).await.is_err(),
        "still the newer layout"
    );
    assert!(res.denials().is_empty(), "{:?}", res.denials());
    res.delete().await.expect("cleanup");
}
