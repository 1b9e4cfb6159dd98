//! The local AWS endpoint: moto over HTTP, conditional writes, resources.

use aws_sdk_dynamodb::types::AttributeValue;
use testkit::aws;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_racing_conditional_updates_have_exactly_one_winner_every_round() {
    let config = aws::sdk_config().await.expect("endpoint");
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let table = aws::unique_name("race");
    aws::create_table(&ddb, &table, false).await.expect("table");
    for round in 0..20 {
        let pk = format!("lease#{round}");
        ddb.put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(pk.clone()))
            .send()
            .await
            .expect("seed item");
        let mut tasks = Vec::new();
        for contender in 0..50 {
            let (ddb, table, pk) = (ddb.clone(), table.clone(), pk.clone());
            tasks.push(tokio::spawn(async move {
                let r = ddb
                    .update_item()
                    .table_name(&table)
                    .key("pk", AttributeValue::S(pk))
                    .update_expression("SET lease_owner = :me")
                    .condition_expression("attribute_not_exists(lease_owner)")
                    .expression_attribute_values(":me", AttributeValue::S(format!("c{contender}")))
                    .send()
                    .await;
                match r {
                    Ok(_) => Ok(contender),
                    Err(e) => Err(e
                        .into_service_error()
                        .is_conditional_check_failed_exception()),
                }
            }));
        }
        let mut winners = Vec::new();
        let mut refused = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(c) => winners.push(c),
                Err(true) => refused += 1,
                Err(false) => panic!("an update failed for another reason than its condition"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(refused, 49, "round {round}");
        let item = ddb
            .get_item()
            .table_name(&table)
            .key("pk", AttributeValue::S(pk))
            .consistent_read(true)
            .send()
            .await
            .expect("read back");
        let owner = item
            .item()
            .and_then(|i| i.get("lease_owner"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        assert_eq!(owner, Some(format!("c{}", winners[0])), "round {round}");
    }
    ddb.delete_table()
        .table_name(&table)
        .send()
        .await
        .expect("cleanup");
}

/// DynamoDB writes an item atomically: a read sees it whole or not at all.
/// moto's UpdateItem creates a missing item with its key and then applies
/// the update's actions one at a time, so without the double's lock a
/// concurrent GetItem saw items with the key alone (the token store took
/// them for another identity's items).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_never_sees_an_item_half_created_by_an_update() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let config = aws::sdk_config().await.expect("endpoint");
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let table = aws::unique_name("atomic");
    aws::create_table(&ddb, &table, false).await.expect("table");
    const ITEMS: usize = 300;
    let key = |i: usize| AttributeValue::S(format!("item#{i}"));
    // The readers chase the item being created.
    let (current, done) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let mut readers = Vec::new();
    for _ in 0..6 {
        let (ddb, table, current, done) =
            (ddb.clone(), table.clone(), current.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut whole = 0;
            while !done.load(Ordering::Relaxed) {
                let i = current.load(Ordering::Relaxed);
                let got = ddb
                    .get_item()
                    .table_name(&table)
                    .key("pk", key(i))
                    .consistent_read(true)
                    .send()
                    .await
                    .expect("read");
                if let Some(item) = got.item() {
                    let missing: Vec<&str> = ["a", "b", "c", "d", "e", "f"]
                        .into_iter()
                        .filter(|a| !item.contains_key(*a))
                        .collect();
                    assert!(
                        missing.is_empty(),
                        "item {i} read half made, missing {missing:?}"
                    );
                    whole += 1;
                }
            }
            whole
        }));
    }
    for i in 0..ITEMS {
        current.store(i, Ordering::Relaxed);
        ddb.update_item()
            .table_name(&table)
            .key("pk", key(i))
            .update_expression("SET a = :v, b = :v, c = :v, d = :v, e = :v, f = :v")
            .expression_attribute_values(":v", AttributeValue::N("1".into()))
            .send()
            .await
            .expect("update");
    }
    done.store(true, Ordering::Relaxed);
    let mut seen = 0;
    for r in readers {
        seen += r.await.expect("reader");
    }
    assert!(seen > 0, "the readers met items the writer made");
    ddb.delete_table()
        .table_name(&table)
        .send()
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn creates_the_products_tables_and_secret_and_deletes_only_them() {
    let res = aws::TestResources::create("client-a", "secret-a")
        .await
        .expect("resources");
    let tables = res.dynamodb.list_tables().send().await.expect("list");
    let names = tables.table_names();
    assert!(names.contains(&res.token_table) && names.contains(&res.analytics_table));
    let secret = res
        .secrets
        .get_secret_value()
        .secret_id(&res.secret_id)
        .send()
        .await
        .expect("secret");
    let v: serde_json::Value =
        serde_json::from_str(secret.secret_string().unwrap_or_default()).expect("json");
    assert_eq!(v["clientId"], "client-a");
    assert_eq!(v["clientSecret"], "secret-a");
    res.delete().await.expect("delete");
    let after = res.dynamodb.list_tables().send().await.expect("list");
    assert!(!after.table_names().contains(&res.token_table));
    assert!(!after.table_names().contains(&res.analytics_table));
}

/// Writes `ADD n :one` to item `pk` in a one-item transaction.
async fn add_in_transaction(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    pks: &[&str],
) -> Result<
    (),
    aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
    >,
> {
    use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
    let mut tx = ddb.transact_write_items();
    for pk in pks {
        let update = Update::builder()
            .table_name(table)
            .key("pk", AttributeValue::S((*pk).into()))
            .update_expression("ADD n :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .expect("update");
        tx = tx.transact_items(TransactWriteItem::builder().update(update).build());
    }
    tx.send().await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_item_inside_a_running_transaction_refuses_other_writers_as_dynamodb_does() {
    let config = aws::sdk_config().await.expect("endpoint");
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let table = aws::unique_name("conflicts");
    aws::create_table(&ddb, &table, false).await.expect("table");
    aws::set_double(
        &ddb,
        &table,
        aws::DoubleSwitches {
            tx_hold_ms: 1_500,
            ..Default::default()
        },
    )
    .await
    .expect("switches");
    let holder = {
        let (ddb, table) = (ddb.clone(), table.clone());
        tokio::spawn(async move { add_in_transaction(&ddb, &table, &["hot"]).await })
    };
    // Plain writes do not hold items, so the first one refused proves the
    // holder holds "hot"; then a transaction on it is refused too, on that
    // item only. (A probing transaction would hold "hot" itself.)
    let mut write_refused = false;
    while !holder.is_finished() && !write_refused {
        let r = ddb
            .update_item()
            .table_name(&table)
            .key("pk", AttributeValue::S("hot".into()))
            .update_expression("ADD n :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await;
        if let Err(e) = r {
            let e = e.into_service_error();
            assert!(e.is_transaction_conflict_exception(), "{e:?}");
            write_refused = true;
        }
    }
    let mut tx_refused = None;
    let mut tx_committed = 0;
    while !holder.is_finished() && tx_refused.is_none() {
        match add_in_transaction(&ddb, &table, &["cold", "hot"]).await {
            Ok(()) => tx_committed += 1,
            Err(e) => {
                tx_refused = Some(match e.into_service_error() {
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => c
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or_default().to_string())
                        .collect::<Vec<_>>(),
                    other => panic!("not a cancellation: {other:?}"),
                })
            }
        }
    }
    holder.await.expect("task").expect("the holder commits");
    assert_eq!(
        tx_refused,
        Some(vec!["None".to_string(), "TransactionConflict".to_string()]),
        "the second transaction is cancelled on the held item only"
    );
    assert!(write_refused, "a plain write into the held item is refused");
    // The refused transaction wrote nothing: "cold" counts only the ones
    // that committed before the holder took its item.
    let cold = ddb
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("cold".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("read");
    let n = cold
        .item()
        .and_then(|i| i.get("n"))
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    assert_eq!(n, tx_committed);
    ddb.delete_table()
        .table_name(&table)
        .send()
        .await
        .expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hot_item_is_throttled_above_its_write_units_a_second() {
    let config = aws::sdk_config().await.expect("endpoint");
    // No SDK retries: the test sees each refusal.
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build(),
    );
    let table = aws::unique_name("throttle");
    aws::create_table(&ddb, &table, false).await.expect("table");
    aws::set_double(
        &ddb,
        &table,
        aws::DoubleSwitches {
            item_wcu_per_s: 10,
            ..Default::default()
        },
    )
    .await
    .expect("switches");
    // 10 units a second: at most 5 transactional writes (2 units each) pass
    // in any one second, then the item is throttled.
    let mut reasons = None;
    for _ in 0..20 {
        if let Err(e) = add_in_transaction(&ddb, &table, &["hot"]).await {
            if let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) = e.into_service_error() {
                reasons = Some(c.cancellation_reasons().iter().map(|r| r.code().unwrap_or_default().to_string()).collect::<Vec<_>>());
            }
            break;
        }
    }
    assert_eq!(reasons, Some(vec!["ThrottlingError".to_string()]));
    let mut plain = None;
    for _ in 0..20 {
        let r = ddb
            .update_item()
            .table_name(&table)
            .key("pk", AttributeValue::S("hot".into()))
            .update_expression("ADD n :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await;
        if let Err(e) = r {
            plain = Some(
                e.into_service_error()
                    .is_provisioned_throughput_exceeded_exception(),
            );
            break;
        }
    }
    assert_eq!(
        plain,
        Some(true),
        "a plain write is throttled with ProvisionedThroughputExceededException"
    );
    // Another item is not throttled.
    add_in_transaction(&ddb, &table, &["cold"])
        .await
        .expect("a cold item is not throttled");
    ddb.delete_table()
        .table_name(&table)
        .send()
        .await
        .expect("cleanup");
}

/// One DynamoDB JSON-protocol call to `url`.
async fn dynamodb_call(url: &str, op: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let r = crate::common::http()
        .post(format!("{url}/"))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
        // moto routes by the credential scope's service; it checks no signature.
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20251120/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .expect("dynamodb call");
    let status = r.status().as_u16();
    let text = r.text().await.expect("answer");
    let answer =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{op}: {status} {e}: {text:.300}"));
    (status, answer)
}

/// The same tables and items on `url`: a sorted table with a global index
/// (five partitions, one emptied), a hash-only table and a numeric key.
async fn seed_query_tables(url: &str) {
    use serde_json::json;
    let s = |n: &str| json!({"AttributeName": n, "AttributeType": "S"});
    let k = |n: &str, t: &str| json!({"AttributeName": n, "KeyType": t});
    let tables = [
        json!({"TableName": "sorted", "BillingMode": "PAY_PER_REQUEST",
               "AttributeDefinitions": [s("pk"), s("sk"), s("g")],
               "KeySchema": [k("pk", "HASH"), k("sk", "RANGE")],
               "GlobalSecondaryIndexes": [{"IndexName": "by-g",
                   "KeySchema": [k("g", "HASH"), k("sk", "RANGE")],
                   "Projection": {"ProjectionType": "ALL"}}]}),
        json!({"TableName": "flat", "BillingMode": "PAY_PER_REQUEST",
               "AttributeDefinitions": [s("pk")], "KeySchema": [k("pk", "HASH")]}),
        json!({"TableName": "numeric", "BillingMode": "PAY_PER_REQUEST",
               "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "N"},
                                        {"AttributeName": "sk", "AttributeType": "N"}],
               "KeySchema": [k("pk", "HASH"), k("sk", "RANGE")]}),
    ];
    for t in &tables {
        assert_eq!(dynamodb_call(url, "CreateTable", t).await.0, 200);
    }
    // Written out of key order (7 and 40 are coprime), so the answer's
    // order is the store's doing.
    for i in 0..40 {
        for p in 0..5 {
            let item = json!({"TableName": "sorted", "Item": {
                "pk": {"S": format!("p{p}")}, "sk": {"S": format!("m#{:03}", i * 7 % 40)},
                "g": {"S": format!("g{}", i % 3)}, "n": {"N": (i * 11 % 17).to_string()},
                "pad": {"S": "x".repeat(i * 40)}}});
            assert_eq!(dynamodb_call(url, "PutItem", &item).await.0, 200);
        }
        let flat = json!({"TableName": "flat", "Item": {"pk": {"S": format!("f{i}")}, "n": {"N": i.to_string()}}});
        assert_eq!(dynamodb_call(url, "PutItem", &flat).await.0, 200);
        let num = json!({"TableName": "numeric", "Item": {"pk": {"N": (i % 2).to_string()}, "sk": {"N": format!("{i}.5")}}});
        assert_eq!(dynamodb_call(url, "PutItem", &num).await.0, 200);
    }
    for i in 0..40 {
        let gone = json!({"TableName": "sorted", "Key": {"pk": {"S": "p4"}, "sk": {"S": format!("m#{i:03}")}}});
        assert_eq!(dynamodb_call(url, "DeleteItem", &gone).await.0, 200);
    }
}

/// The requests compared: every Query shape the product sends and more.
fn query_requests() -> Vec<serde_json::Value> {
    use serde_json::json;
    let mut out = Vec::new();
    for p in ["p0", "p3", "p4", "absent"] {
        let base = json!({"TableName": "sorted", "KeyConditionExpression": "pk = :p",
                          "ExpressionAttributeValues": {":p": {"S": p}}});
        let with = |extra: serde_json::Value| {
            let mut q = base.clone();
            for (k, v) in extra.as_object().into_iter().flatten() {
                q[k] = v.clone();
            }
            q
        };
        out.push(base.clone());
        out.push(with(
            json!({"ScanIndexForward": false, "ReturnConsumedCapacity": "TOTAL"}),
        ));
        out.push(with(
            json!({"ConsistentRead": true, "ReturnConsumedCapacity": "INDEXES"}),
        ));
        out.push(with(json!({"Select": "COUNT"})));
        out.push(with(json!({"Limit": 7})));
        out.push(with(json!({"Limit": 5, "ScanIndexForward": false})));
        out.push(with(json!({"FilterExpression": "n > :x", "Limit": 9,
            "ExpressionAttributeValues": {":p": {"S": p}, ":x": {"N": "8"}}})));
        out.push(with(json!({"ProjectionExpression": "#s, n",
            "ExpressionAttributeNames": {"#s": "sk"}})));
        for cond in [
            "begins_with(sk, :a)",
            "sk BETWEEN :a AND :b",
            "sk > :a",
            "sk <= :b",
        ] {
            out.push(with(json!({"KeyConditionExpression": format!("pk = :p AND {cond}"),
                "Limit": 4, "ScanIndexForward": false,
                "ExpressionAttributeValues": {":p": {"S": p}, ":a": {"S": "m#01"}, ":b": {"S": "m#03"}}})));
        }
    }
    out.push(
        json!({"TableName": "sorted", "IndexName": "by-g", "KeyConditionExpression": "g = :g",
                    "Limit": 6, "ExpressionAttributeValues": {":g": {"S": "g1"}}}),
    );
    for p in ["f3", "f4", "absent"] {
        out.push(
            json!({"TableName": "flat", "KeyConditionExpression": "pk = :p",
                        "ReturnConsumedCapacity": "TOTAL",
                        "ExpressionAttributeValues": {":p": {"S": p}}}),
        );
    }
    for p in ["1", "1.0", "0"] {
        out.push(
            json!({"TableName": "numeric", "KeyConditionExpression": "pk = :p",
                        "Limit": 6, "ExpressionAttributeValues": {":p": {"N": p}}}),
        );
    }
    out
}

/// Every page of `request`, following `LastEvaluatedKey`.
async fn all_pages(url: &str, request: &serde_json::Value) -> Vec<(u16, serde_json::Value)> {
    let mut pages = Vec::new();
    let mut request = request.clone();
    loop {
        let (status, answer) = dynamodb_call(url, "Query", &request).await;
        let next = answer.get("LastEvaluatedKey").cloned();
        pages.push((status, answer));
        match next {
            Some(key) if pages.len() < 50 => request["ExclusiveStartKey"] = key,
            _ => return pages,
        }
    }
}

/// The launcher answers a table Query from the partition's own items (see
/// `moto_launcher.py`); here its answers, page by page, are moto's own.
#[tokio::test]
async fn patched_query_answers_as_moto_does() {
    if !aws::moto_is_ours() {
        return; // the patch is moto's, not a configured endpoint's
    }
    // Named, not inherited: a shell that exported "0" must not make both plain.
    let patched =
        aws::SeparateMoto::start(&[("VA_MOTO_QUERY_BY_PARTITION", "1")]).expect("patched moto");
    let unpatched =
        aws::SeparateMoto::start(&[("VA_MOTO_QUERY_BY_PARTITION", "0")]).expect("moto as shipped");
    seed_query_tables(patched.url()).await;
    seed_query_tables(unpatched.url()).await;
    let (mut items, mut multi_page) = (0, 0);
    for request in query_requests() {
        let ours = all_pages(patched.url(), &request).await;
        let theirs = all_pages(unpatched.url(), &request).await;
        assert_eq!(ours, theirs, "request {request}");
        assert!(ours.iter().all(|(status, _)| *status == 200), "{ours:?}");
        items += ours
            .iter()
            .map(|(_, a)| a["Items"].as_array().map_or(0, Vec::len))
            .sum::<usize>();
        multi_page += usize::from(ours.len() > 1);
    }
    assert!(
        items > 500 && multi_page > 10,
        "{items} items, {multi_page} paged"
    );
}

/// A disabled rule matches no event (EventBridge API reference,
/// DisableRule); moto delivered whatever the rule's state until the
/// launcher's patch. Delivery to an SQS target happens inside `PutEvents`,
/// so the queue is read at once.
#[tokio::test]
async fn a_disabled_rule_delivers_nothing() {
    let config = aws::sdk_config().await.expect("endpoint");
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let (bus, rule) = (aws::unique_name("bus"), aws::unique_name("rule"));
    events
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("bus");
    let queue = sqs
        .create_queue()
        .queue_name(aws::unique_name("target"))
        .send()
        .await
        .expect("queue")
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("queue arn");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(r#"{"source":["va.test"]}"#)
        .send()
        .await
        .expect("rule");
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(queue_arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("target");
    let deliveries = || async {
        events
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(&bus)
                    .source("va.test")
                    .detail_type("t")
                    .detail("{}")
                    .build(),
            )
            .send()
            .await
            .expect("put events");
        let got = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        got.messages().len()
    };
    assert_eq!(deliveries().await, 1, "an enabled rule delivers");
    events
        .disable_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .send()
        .await
        .expect("disable");
    assert_eq!(deliveries().await, 0, "a disabled rule delivers nothing");
}
