//! The SAM template's least-privilege rules, read from infra/template.yaml.

use serde_norway::Value;

fn template() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    let text = std::fs::read_to_string(&path).expect("infra/template.yaml");
    serde_norway::from_str(&text).expect("valid YAML")
}

/// `!Ref X` / `!GetAtt X.Arn` -> ("Ref"|"GetAtt", "X..."); plain strings -> ("", s).
fn reference(v: &Value) -> (String, String) {
    match v {
        Value::Tagged(t) => (
            t.tag.to_string().trim_start_matches('!').to_string(),
            t.value.as_str().unwrap_or_default().to_string(),
        ),
        Value::String(s) => (String::new(), s.clone()),
        other => (String::new(), format!("{other:?}")),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

struct Statement {
    function: String,
    actions: Vec<String>,
    resources: Vec<(String, String)>,
    condition: Value,
}

fn statements(t: &Value) -> Vec<Statement> {
    let mut out = Vec::new();
    let Some(resources) = t["Resources"].as_mapping() else {
        return out;
    };
    for (name, r) in resources {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let function = name.as_str().unwrap_or_default().to_string();
        for policy in r["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            assert!(
                policy.is_mapping(),
                "{function}: only inline policy documents, no managed policies"
            );
            for s in policy["Statement"].as_sequence().into_iter().flatten() {
                let resources = match &s["Resource"] {
                    Value::Sequence(items) => items.iter().map(reference).collect(),
                    other => vec![reference(other)],
                };
                out.push(Statement {
                    function: function.clone(),
                    actions: strings(&s["Action"]),
                    resources,
                    condition: s["Condition"].clone(),
                });
            }
        }
    }
    out
}

fn leading_keys(condition: &Value) -> Vec<String> {
    strings(&condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
}

#[test]
fn functions_are_arm64_al2023_built_with_cargo_lambda() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(strings(&globals["Architectures"]), vec!["arm64"]);
    let functions: Vec<_> = t["Resources"]
        .as_mapping()
        .expect("resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .collect();
    assert_eq!(functions.len(), 4);
    for f in functions {
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda")
        );
        assert!(
            f["Properties"]["MemorySize"].as_u64().is_some()
                && f["Properties"]["Timeout"].as_u64().is_some()
        );
    }
}

#[test]
fn no_wildcards_in_function_policies() {
    let t = template();
    let all = statements(&t);
    assert!(all.len() >= 8, "found {} statements", all.len());
    for s in &all {
        for a in &s.actions {
            assert!(
                !a.contains('*') || a.starts_with("kms:GenerateDataKey"),
                "{}: wildcard action {a}",
                s.function
            );
            assert_ne!(a, "dynamodb:*");
        }
        for (kind, r) in &s.resources {
            assert!(
                !(kind.is_empty() && r == "*"),
                "{}: `*` resource for {:?}",
                s.function,
                s.actions
            );
        }
    }
}

#[test]
fn every_dynamodb_statement_is_scoped_by_leading_keys() {
    let t = template();
    for s in statements(&t)
        .iter()
        .filter(|s| s.actions.iter().any(|a| a.starts_with("dynamodb:")))
    {
        let keys = leading_keys(&s.condition);
        assert!(
            !keys.is_empty(),
            "{}: DynamoDB access without a dynamodb:LeadingKeys condition",
            s.function
        );
        let table = &s.resources[0].1;
        if table.starts_with("TokenTable") {
            assert_eq!(keys, vec!["token#*"], "{}", s.function);
        }
    }
}

#[test]
fn handlers_may_only_read_mark_and_acquire_token_items() {
    let t = template();
    for s in statements(&t)
        .iter()
        .filter(|s| s.resources.iter().any(|(_, r)| r.starts_with("TokenTable")))
    {
        for a in &s.actions {
            assert!(
                ["dynamodb:GetItem", "dynamodb:UpdateItem"].contains(&a.as_str()),
                "{}: {a} on the token table",
                s.function
            );
        }
        if s.function == "DashboardApiFunction" {
            assert_eq!(
                s.actions,
                vec!["dynamodb:GetItem"],
                "the dashboard only reads token health"
            );
        }
    }
}

#[test]
fn only_the_functions_that_fetch_tokens_may_read_the_one_secret() {
    let t = template();
    let mut readers: Vec<String> = Vec::new();
    for s in statements(&t) {
        if s.actions.iter().any(|a| a.starts_with("secretsmanager:")) {
            assert_eq!(
                s.actions,
                vec!["secretsmanager:GetSecretValue"],
                "{}",
                s.function
            );
            assert_eq!(
                s.resources,
                vec![("Ref".to_string(), "GenesysSecretArn".to_string())],
                "{}",
                s.function
            );
            readers.push(s.function.clone());
        }
    }
    readers.sort();
    assert_eq!(
        readers,
        vec!["EnrichmentSweeperFunction", "TokenRefresherFunction"]
    );
    // The secret is a parameter: never a plain value in the template.
    assert!(t["Parameters"]["GenesysSecretArn"]["Default"].is_null());
}

#[test]
fn the_event_handler_cannot_touch_tokens_or_the_secret() {
    let t = template();
    for s in statements(&t)
        .iter()
        .filter(|s| s.function == "ConversationEventsFunction")
    {
        assert!(
            !s.resources.iter().any(|(_, r)| r.starts_with("TokenTable")),
            "{:?}",
            s.resources
        );
        assert!(!s.actions.iter().any(|a| a.starts_with("secretsmanager:")));
    }
}

#[test]
fn tables_are_on_demand_kms_encrypted_with_ttl_and_analytics_has_pitr() {
    let t = template();
    for name in ["TokenTable", "AnalyticsTable"] {
        let p = &t["Resources"][name]["Properties"];
        assert_eq!(p["BillingMode"].as_str(), Some("PAY_PER_REQUEST"), "{name}");
        assert_eq!(
            p["SSESpecification"]["SSEType"].as_str(),
            Some("KMS"),
            "{name}"
        );
        assert_eq!(
            p["TimeToLiveSpecification"]["AttributeName"].as_str(),
            Some("ttl"),
            "{name}"
        );
    }
    assert_eq!(
        t["Resources"]["AnalyticsTable"]["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
}

#[test]
fn batch_delivery_reports_item_failures_and_redrives_to_the_encrypted_dead_letter_queue() {
    let t = template();
    let r = &t["Resources"];
    let mapping = &r["BatchEventSource"]["Properties"];
    assert_eq!(mapping["BatchSize"].as_u64(), Some(100));
    assert_eq!(
        strings(&mapping["FunctionResponseTypes"]),
        vec!["ReportBatchItemFailures".to_string()]
    );
    let queue = &r["EventQueue"]["Properties"];
    assert_eq!(
        reference(&queue["RedrivePolicy"]["deadLetterTargetArn"]),
        ("GetAtt".into(), "DeadLetterQueue.Arn".into())
    );
    // Lambda's SQS guide: visibility at least six times the function timeout.
    let timeout = r["ConversationEventsFunction"]["Properties"]["Timeout"]
        .as_u64()
        .unwrap_or(0);
    assert!(queue["VisibilityTimeout"].as_u64().unwrap_or(0) >= 6 * timeout);
    // EventBridge cannot write to queues under the AWS managed SQS key.
    for q in ["EventQueue", "DeadLetterQueue"] {
        assert_eq!(
            reference(&r[q]["Properties"]["KmsMasterKeyId"]),
            ("Ref".into(), "DataKey".into()),
            "{q}"
        );
    }
    // Exactly one of the two rules exists for a deployment.
    assert_eq!(r["BatchRule"]["Condition"].as_str(), Some("BatchDelivery"));
    assert_eq!(
        r["PerEventRule"]["Condition"].as_str(),
        Some("PerEventDelivery")
    );
}
