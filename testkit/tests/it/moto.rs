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
