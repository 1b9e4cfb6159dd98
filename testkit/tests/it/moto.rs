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
