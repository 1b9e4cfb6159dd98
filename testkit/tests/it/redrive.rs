//! `va-admin redrive`'s core against moto's SQS: events failed by an
//! injected DynamoDB outage land in the dead-letter queue (as Lambda's
//! on-failure records, plus one as EventBridge's dead letter and one
//! rejected event), and redriving counts each exactly once.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;
use testkit::aws::{DoubleSwitches, TestResources, set_double};
use testkit::iam::Role;
use testkit::product;
use testkit::replay::{self, DriveOptions, Fleet, Repeats};
use testkit::sim::{Policies, Simulator};
use testkit::traffic::{self, TrafficConfig};
use va_analytics::{AnalyticsStore, KpiConfig};
use va_handler::EventHandler;
use va_handler::redrive::{RedriveOptions, redrive};

/// A handler whose DynamoDB client does not retry: the outage fails fast.
fn impatient_handler(res: &TestResources, sim: &Simulator) -> EventHandler {
    let conf = aws_sdk_dynamodb::config::Builder::from(&res.config)
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    EventHandler::new(
        AnalyticsStore::new(
            aws_sdk_dynamodb::Client::from_conf(conf),
            res.analytics_table.clone(),
        ),
        KpiConfig::default(),
        sim.clock(),
    )
}

fn attr(v: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .expect("attribute")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_dead_lettered_by_a_dynamodb_outage_are_each_counted_once_by_redrive() {
    let t = traffic::generate(&TrafficConfig {
        seed: 31,
        sessions_per_minute: 8,
        minutes: 5,
        ..TrafficConfig::default()
    });
    let start = t.events[0].at_ms;
    let (sim, res) = crate::common::setup(Policies::default(), start).await;
    let fleet: Fleet<
        EventHandler,
        va_enrichment::lookup::BrokerAccess<token_broker::GenesysTokenSource>,
    > = Fleet {
        containers: (0..3)
            .map(|_| {
                Arc::new(impatient_handler(
                    &res.as_role(Role::ConversationEvents),
                    &sim,
                ))
            })
            .collect(),
        refresher: None,
        sweeper: None,
    };
    let all = replay::deliveries(
        &t,
        Repeats {
            duplicates: 0.05,
            resends: 0.02,
        },
        5,
    );
    let outage_from = start + 60_000;
    let outage_to = start + 2 * 60_000;
    let before: Vec<_> = all
        .iter()
        .filter(|d| d.at_ms < outage_from)
        .cloned()
        .collect();
    let during: Vec<_> = all
        .iter()
        .filter(|d| (outage_from..outage_to).contains(&d.at_ms))
        .cloned()
        .collect();
    let after: Vec<_> = all
        .iter()
        .filter(|d| d.at_ms >= outage_to)
        .cloned()
        .collect();
    let queue = product::dead_letters_for_operator(&res);
    let opts = DriveOptions {
        drain: Duration::ZERO,
        invocation_timeout: Duration::from_secs(2),
        // Lambda's on-failure destination sends with the function's role.
        dead_letters: Some(product::dead_letters(&res)),
        ..DriveOptions::default()
    };
    let progress: replay::Progress = Arc::new(|_, _| {});
    let r0 = replay::drive(&sim, &fleet, before, &opts, progress.clone()).await;
    assert_eq!(r0.dead_lettered, 0, "{:?}", r0.errors);

    set_double(
        &res.dynamodb,
        &res.analytics_table,
        DoubleSwitches {
            unavailable: true,
            ..DoubleSwitches::default()
        },
    )
    .await
    .expect("outage on");
    let r1 = replay::drive(&sim, &fleet, during.clone(), &opts, progress.clone()).await;
    set_double(
        &res.dynamodb,
        &res.analytics_table,
        DoubleSwitches::default(),
    )
    .await
    .expect("outage off");
    assert!(r1.dead_lettered > 0, "the outage dead-lettered events");
    // What needs no write (customer and agent legs) is acknowledged even
    // so; everything else failed all its attempts.
    assert_eq!(
        r1.dead_lettered + r1.processed + r1.duplicates + r1.rejected,
        r1.deliveries,
        "{:?}",
        r1.errors
    );
    let r2 = replay::drive(&sim, &fleet, after, &opts, progress).await;
    assert_eq!(r2.dead_lettered, 0, "{:?}", r2.errors);

    // The counts are short by exactly the outage's events.
    let store = product::store(&res);
    let end = t.events.last().map(|e| e.at_ms).unwrap_or(start) + 3_600_000;
    assert!(
        !replay::compare_base(&store, &t.truth, 0, end)
            .await
            .is_empty(),
        "before the redrive the store misses the outage's events"
    );

    // Two more shapes: EventBridge's dead letter of an outage event (a
    // second copy: redrive must find it counted) and a rejected event.
    let copy = during.first().expect("an outage delivery").event.clone();
    res.sqs
        .send_message()
        .queue_url(&res.dead_letter_queue_url)
        .message_body(copy.to_string())
        .message_attributes(
            "RULE_ARN",
            attr("arn:aws:events:us-east-1:123456789012:rule/genesys/stack-conversation-events"),
        )
        .message_attributes(
            "TARGET_ARN",
            attr("arn:aws:lambda:us-east-1:123456789012:function:conversation-events"),
        )
        .message_attributes("ERROR_CODE", attr("SDK_CLIENT_ERROR"))
        .message_attributes(
            "ERROR_MESSAGE",
            attr("Unable to invoke the Lambda function"),
        )
        .send()
        .await
        .expect("send");
    // And the event queue's redrive shape: the event alone, no attributes
    // (SQS moves it; set-up, as the administrator).
    va_handler::DeadLetterQueue::new(res.sqs.clone(), res.dead_letter_queue_url.clone())
        .send_raw(&copy.to_string())
        .await
        .expect("send");
    let mut bad = copy.clone();
    bad["id"] = serde_json::json!("bad-event");
    bad["detail"]["eventBody"]["conversationId"] = serde_json::json!("not-a-uuid");
    let function = va_handler::ConversationEvents::new(
        impatient_handler(&res.as_role(Role::ConversationEvents), &sim),
        Some(product::dead_letters(&res)),
    );
    let answer = function
        .invoke(&bad, Duration::from_secs(5))
        .await
        .expect("a rejected event is acknowledged");
    assert!(answer["rejected"].is_string());

    // va-admin's redrive, signing as the operator (the stack's OperatorPolicy).
    let handler = impatient_handler(&res.as_role(Role::Operator), &sim);
    let ropts = RedriveOptions {
        wait_s: 0,
        visibility_s: 30,
        ..RedriveOptions::default()
    };
    let report = redrive(&handler, &queue, &ropts).await.expect("redrive");
    println!("redrive: {report:?}");
    assert_eq!(report.received, r1.dead_lettered + 3);
    assert_eq!(
        report.counted + report.already_counted,
        r1.dead_lettered + 2,
        "every outage event and both copies are counted or found counted"
    );
    assert_eq!(
        report.rejected, 1,
        "the rejected event stays, with its reason"
    );
    assert_eq!((report.failed, report.unreadable), (0, 0));
    assert_eq!(report.left, 1);
    assert_eq!(
        report.by_origin.get("LambdaOnFailure"),
        Some(&r1.dead_lettered)
    );
    assert_eq!(report.by_origin.get("EventBridge"), Some(&1));
    assert_eq!(report.by_origin.get("Rejected"), Some(&1));
    assert_eq!(report.by_origin.get("Queue"), Some(&1));

    let diffs = replay::compare_base(&store, &t.truth, 0, end).await;
    assert!(
        diffs.is_empty(),
        "after the redrive every event is counted exactly once: {} differences, first {:#?}",
        diffs.len(),
        &diffs[..diffs.len().min(3)]
    );
    // A second redrive finds only the rejected event (once visible again):
    // nothing is counted twice.
    let again = redrive(
        &handler,
        &queue,
        &RedriveOptions {
            visibility_s: 0,
            drop_rejected: true,
            ..ropts
        },
    )
    .await
    .expect("redrive");
    assert_eq!(again.counted, 0);
    assert!(again.dropped <= 1, "only the rejected event can be dropped");
    assert!(
        replay::compare_base(&store, &t.truth, 0, end)
            .await
            .is_empty()
    );
    res.delete().await.expect("cleanup");
}
