//! The enforcing double (issue 22): every call is authorized against the
//! template's policies for the caller's role, and refused as AWS refuses.
//! For each condition key the template uses, one request AWS allows and
//! one it refuses; then the defects the double found, each fixed.

use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use testkit::aws::TestResources;
use testkit::iam::policy::Policy;
use testkit::iam::{Delivery, Role, Shape, Tenancy};
use testkit::sim::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};

async fn resources() -> TestResources {
    TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto")
}

/// Fresh resources deployed with `DeliveryMode=Batch` (SingleOrg).
async fn batch_resources() -> TestResources {
    resources()
        .await
        .deployed_as(shape(Tenancy::SingleOrg, Delivery::Batch))
        .expect("Batch")
}

fn shape(tenancy: Tenancy, delivery: Delivery) -> Shape {
    Shape {
        tenancy,
        delivery,
        ..Shape::default()
    }
}

/// A refusal's HTTP status, error code and message.
fn refusal<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    r: Result<T, SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>>,
) -> (u16, String, String) {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => {
            let status = e.raw_response().map_or(0, |r| r.status().as_u16());
            (
                status,
                e.code().unwrap_or_default().to_string(),
                e.message().unwrap_or_default().to_string(),
            )
        }
    }
}

/// Sends an empty JSON object to the queue at `url`.
async fn send_empty(
    sqs: &aws_sdk_sqs::Client,
    url: String,
) -> Result<
    aws_sdk_sqs::operation::send_message::SendMessageOutput,
    SdkError<
        aws_sdk_sqs::operation::send_message::SendMessageError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
> {
    sqs.send_message()
        .queue_url(url)
        .message_body("{}")
        .send()
        .await
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

#[tokio::test]
async fn leading_keys_admit_a_roles_partitions_and_refuse_the_rest_as_dynamodb_does() {
    let res = resources().await;
    let events = res.as_role(Role::ConversationEvents);
    let put = |pk: &str, table: &str| {
        events
            .dynamodb
            .put_item()
            .table_name(table)
            .item("pk", s(pk))
            .item("sk", s("x"))
    };
    put("agg#s01", &res.analytics_table)
        .send()
        .await
        .expect("its own partition");
    let (status, code, message) = refusal(put("token#slot", &res.analytics_table).send().await);
    assert_eq!((status, code.as_str()), (400, "AccessDeniedException"));
    assert!(
        message.contains(":assumed-role/")
            && message.contains("ConversationEventsFunction")
            && message.contains("dynamodb:PutItem")
            && message.contains(&format!("table/{}", res.analytics_table))
            && message.contains("because no identity-based policy allows"),
        "{message}"
    );
    let denials = res.denials();
    assert_eq!(denials.len(), 1, "{denials:?}");
}

#[tokio::test]
async fn attributes_and_select_admit_the_health_projection_only() {
    let res = resources().await;
    let dashboard = res.as_role(Role::DashboardApi);
    let get = |projection: Option<String>| {
        let mut g = dashboard
            .dynamodb
            .get_item()
            .table_name(&res.token_table)
            .key("pk", s("token#slot"));
        if let Some(p) = projection {
            g = g.projection_expression(p);
        }
        g.send()
    };
    let health = token_store::attr::HEALTH.join(", ");
    get(Some(health.clone())).await.expect("health attributes");
    let (_, code, _) = refusal(get(Some(format!("{health}, access_token"))).await);
    assert_eq!(code, "AccessDeniedException", "the token itself");
    let (_, code, _) = refusal(get(None).await);
    assert_eq!(code, "AccessDeniedException", "every attribute (Select)");
}

/// The role's policies replaced by `doc` (a test of the double itself).
fn with_policy(res: &TestResources, role: Role, doc: serde_json::Value) {
    let stack = res.stack.as_ref().expect("the double");
    stack.set_policies(role, vec![Policy::parse(&doc).expect("policy")]);
}

fn key_arn(res: &TestResources, key: &str) -> String {
    let stack = res.stack.as_ref().expect("the double");
    stack.names.attributes[&format!("{key}.Arn")].clone()
}

#[tokio::test]
async fn return_values_and_via_service_are_evaluated() {
    let res = resources().await;
    let table = testkit::iam::request::table_arn(&res.token_table);
    let via = |service: &str| {
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": table,
             "Condition": {"StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE", "UPDATED_NEW"]}}},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn(&res, "TokenKey"),
             "Condition": {"StringEquals": {"kms:ViaService": format!("{service}.us-east-1.amazonaws.com")}}},
        ]})
    };
    with_policy(&res, Role::TokenRefresher, via("dynamodb"));
    let refresher = res.as_role(Role::TokenRefresher);
    let update = |rv: aws_sdk_dynamodb::types::ReturnValue| {
        refresher
            .dynamodb
            .update_item()
            .table_name(&res.token_table)
            .key("pk", s("token#slot"))
            .update_expression("SET version = :v")
            .expression_attribute_values(":v", AttributeValue::N("1".into()))
            .return_values(rv)
            .send()
    };
    use aws_sdk_dynamodb::types::ReturnValue;
    update(ReturnValue::UpdatedNew).await.expect("UPDATED_NEW");
    let (_, code, _) = refusal(update(ReturnValue::AllOld).await);
    assert_eq!(code, "AccessDeniedException", "ALL_OLD");
    // The table's key usable through SQS only: DynamoDB cannot decrypt it.
    with_policy(&res, Role::TokenRefresher, via("sqs"));
    let (_, code, message) = refusal(update(ReturnValue::UpdatedNew).await);
    assert_eq!(code, "AccessDeniedException");
    assert!(message.contains("kms:Decrypt"), "{message}");
}

#[tokio::test]
async fn the_queue_key_is_used_only_for_the_queue_its_context_names() {
    let res = batch_resources().await;
    res.create_event_queue().await.expect("event queue");
    let events = res.as_role(Role::ConversationEvents);
    let send = |url: String| send_empty(&events.sqs, url);
    send(res.dead_letter_queue_url.clone())
        .await
        .expect("the dead-letter queue, its context");
    // Allowed to send to the event queue, but the key's context names the
    // dead-letter queue only: SQS cannot use the key for the caller.
    let stack = res.stack.as_ref().expect("double");
    let mut policies = stack.role(Role::ConversationEvents).expect("role").policies;
    let send_events = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sqs:SendMessage",
         "Resource": testkit::iam::request::queue_arn(&res.event_queue_url())}]});
    policies.push(Policy::parse(&send_events).expect("policy"));
    stack.set_policies(Role::ConversationEvents, policies);
    let (status, code, message) = refusal(send(res.event_queue_url()).await);
    assert_eq!((status, code.as_str()), (400, "KMS.AccessDeniedException"));
    assert!(message.contains("kms:GenerateDataKey"), "{message}");
}

#[tokio::test]
async fn source_arn_and_account_admit_the_stacks_rules_only() {
    let res = batch_resources().await;
    let stack = res.stack.as_ref().expect("double");
    let bus = testkit::iam::stack::event_source_name(&res.stack_name);
    let own =
        testkit::iam::stack::rule_arn(&bus, &format!("{}-conversation-events", res.stack_name));
    let other_stack = testkit::iam::stack::rule_arn(&bus, "another-stack-conversation-events");
    let other_account = own.replace(":123456789012:", ":210987654321:");
    assert_eq!(stack.names.attributes["BatchRule.Arn"], own);
    let send = |source: &str| {
        let events = res.as_service("events.amazonaws.com", source);
        let url = res.dead_letter_queue_url.clone();
        async move { send_empty(&events.sqs, url).await }
    };
    send(&own).await.expect("the stack's rule dead-letters");
    let (status, code, _) = refusal(send(&other_stack).await);
    assert_eq!(
        (status, code.as_str()),
        (403, "AccessDenied"),
        "another stack's rule"
    );
    let (_, code, _) = refusal(send(&other_account).await);
    assert_eq!(code, "AccessDenied", "a rule of another account");
}

#[tokio::test]
async fn the_org_reader_is_confined_to_its_tagged_org_and_assumed_with_one_org_tag_only() {
    let res = resources().await;
    let res = testkit::orgs::multi_org(&res).expect("MultiOrg");
    let (a, b) = (
        "0a000000-0000-4000-8000-00000000000a",
        "0b000000-0000-4000-8000-00000000000b",
    );
    let dashboard = res.as_role(Role::DashboardApi);
    let reader_arn = res
        .stack
        .as_ref()
        .and_then(|s| s.role(Role::DashboardOrgReader))
        .expect("reader role")
        .arn;
    let readers = va_analytics::dashboard::access::TaggedReaders::new(
        dashboard.config.clone(),
        reader_arn,
        res.analytics_table.clone(),
    );
    let scope = va_analytics::Scope::Org;
    let store_a = readers.store(a).await;
    store_a
        .query(&scope, 0, 3_600_000)
        .await
        .expect("its own org");
    let refused = store_a.for_org(b).query(&scope, 0, 3_600_000).await;
    assert!(refused.is_err(), "another org's buckets: {refused:?}");
    // The trust policy admits one tag, `org`, whose value is an org id.
    let odd = readers.store("not-an-org-id").await;
    assert!(odd.query(&scope, 0, 3_600_000).await.is_err());
    let denials = res.denials();
    assert!(
        denials.iter().any(|d| d.action == "AssumeRole"),
        "{denials:?}"
    );
}

#[tokio::test]
async fn a_transaction_is_refused_whole_when_one_item_is_not_allowed() {
    use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
    let res = resources().await;
    let events = res.as_role(Role::ConversationEvents);
    let put = |pk: &str| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&res.analytics_table)
                    .item("pk", s(pk))
                    .item("sk", s("x"))
                    .build()
                    .expect("put"),
            )
            .build()
    };
    let (_, code, message) = refusal(
        events
            .dynamodb
            .transact_write_items()
            .transact_items(put("event#1"))
            .transact_items(put("hours"))
            .send()
            .await,
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(message.contains("dynamodb:PutItem"), "{message}");
    let left = res
        .dynamodb
        .get_item()
        .table_name(&res.analytics_table)
        .key("pk", s("event#1"))
        .key("sk", s("x"))
        .send()
        .await
        .expect("get");
    assert!(left.item().is_none(), "nothing of it was written");
}

#[tokio::test]
async fn other_services_refuse_in_their_own_shapes() {
    let res = resources().await;
    let events = res.as_role(Role::ConversationEvents);
    let secret = events
        .secrets
        .get_secret_value()
        .secret_id(&res.secret_id)
        .send()
        .await;
    let e = secret.expect_err("conversation-events never reads the secret");
    let status = e.raw_response().map_or(0, |r| r.status().as_u16());
    let e = e.into_service_error();
    assert_eq!((status, e.code()), (400, Some("AccessDeniedException")));
    // An access key nobody has.
    let nobody = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&res.config)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "AKIANOBODY",
                "x",
                None,
                None,
                "test",
            ))
            .build(),
    );
    let (_, code, _) = refusal(
        nobody
            .get_item()
            .table_name(&res.analytics_table)
            .key("pk", s("agg#s01"))
            .key("sk", s("x"))
            .send()
            .await,
    );
    assert_eq!(code, "UnrecognizedClientException");
}

/// Defect: the sweeper's give-ups (and any enrichment more than 50 minutes
/// late) add a dirty mark for the roll-up in the same transaction, which
/// its role could not write: every later sweep met the same pending item
/// first and failed, so enrichment and roll-ups stopped for good.
#[tokio::test]
async fn a_given_up_session_marks_its_hour_and_the_sweep_goes_on_to_the_roll_up() {
    let traffic = testkit::traffic::generate(&testkit::traffic::TrafficConfig {
        minutes: 2,
        sessions_per_minute: 4,
        start_ms: 1_795_187_000_000,
        ..testkit::traffic::TrafficConfig::default()
    });
    let start = traffic.events[0].at_ms;
    let (sim, res) = crate::common::setup(testkit::sim::Policies::default(), start).await;
    // The analytics API never shows these sessions: each is given up.
    let handler = testkit::product::handler(&res, &sim);
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(30);
    for e in &traffic.events {
        sim.clock().advance_to(e.at_ms.max(sim.clock().now_ms()));
        handler
            .handle(&e.envelope, deadline())
            .await
            .expect("counted");
    }
    let sweeper = testkit::product::sweeper(
        &res,
        &sim,
        token_broker::BrokerConfig::default(),
        va_enrichment::SweepConfig {
            delay: Duration::ZERO,
            give_up_after: Duration::from_secs(3_600),
            ..va_enrichment::SweepConfig::default()
        },
    );
    sim.clock().advance(Duration::from_secs(2 * 3_600));
    let report = sweeper
        .sweep(deadline())
        .await
        .expect("the sweep completes");
    assert!(report.gave_up > 0, "{report:?}");
    assert_eq!(
        report.pending,
        report.gave_up + report.enriched + report.left
    );
    assert!(!report.roll_up_failed, "{report:?}");
    assert!(res.denials().is_empty(), "{:?}", res.denials());
    res.delete().await.expect("cleanup");
}

/// Defect: with DeliveryMode=Batch the event source mapping polls the
/// encrypted event queue with the function's role, whose key statement
/// admitted the dead-letter queue's context only: nothing was received
/// and events expired from the queue after 4 days.
#[tokio::test]
async fn the_batch_mapping_receives_from_the_encrypted_event_queue_with_the_functions_role() {
    let start = 1_795_187_012_345;
    let (sim, res) = crate::common::setup(testkit::sim::Policies::default(), start).await;
    let res = res
        .deployed_as(shape(Tenancy::SingleOrg, Delivery::Batch))
        .expect("Batch");
    res.create_event_queue().await.expect("event queue");
    let (_, fixture) = testkit::fixtures::all()
        .into_iter()
        .find(|(n, _)| n == "flow-end-contained.json")
        .expect("fixture");
    testkit::delivery::eventbridge_sends(&res, &fixture)
        .await
        .expect("EventBridge delivers to the queue");
    let function = testkit::product::function(&res, &sim);
    let poll = testkit::delivery::mapping_polls(&res, &function)
        .await
        .expect("the mapping receives");
    assert_eq!((poll.received, poll.deleted, poll.failed), (1, 1, 0));
    assert!(res.denials().is_empty(), "{:?}", res.denials());
}

/// Every path of every function, in each shape the check deploys, runs
/// under its role without a refusal (the least-privilege check's baseline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_of_every_function_runs_under_its_role_without_a_refusal() {
    for shape in testkit::permissions::SHAPES {
        let res = testkit::permissions::exercise(shape, &|_| {}, Role::Operator)
            .await
            .unwrap_or_else(|e| panic!("{shape:?}: {e}"));
        assert!(res.denials().is_empty(), "{shape:?}: {:?}", res.denials());
    }
}
