//! The SAM template's least-privilege rules, read from infra/template.yaml.

use serde_norway::Value;

pub(crate) fn template() -> Value {
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
                // `!If [condition, statement, !Ref AWS::NoValue]`: the statement.
                let s = match s {
                    Value::Tagged(t) if t.tag == "If" => &t.value[1],
                    s => s,
                };
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

/// The statements of `statements` on the table `table` (a logical id).
fn on_table<'a>(statements: &[&'a Statement], table: &str) -> Vec<&'a Statement> {
    statements
        .iter()
        .copied()
        .filter(|s| s.resources.iter().any(|(_, r)| r.starts_with(table)))
        .collect()
}

/// Asserts a statement's `dynamodb:Attributes` list is the code's list
/// `code` (in any order); returns it.
fn attributes_equal(condition: &Value, code: &[&str], what: &str) -> Vec<String> {
    let mut allowed = strings(&condition["ForAllValues:StringEquals"]["dynamodb:Attributes"]);
    allowed.sort();
    let mut expected: Vec<String> = code.iter().map(|a| a.to_string()).collect();
    expected.sort();
    assert_eq!(allowed, expected, "{what}");
    allowed
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
        // Listing the registry: a Scan cannot be bound by leading keys, and
        // the tenant table holds tenant items only. The two functions that
        // serve every org list it, and the dashboard (for the vendor's
        // staff) only the registry's fields.
        if s.resources[0].1.starts_with("TenantTable")
            && s.actions.contains(&"dynamodb:Scan".into())
        {
            // The scan only: a GetItem here was excess (issue 22's check).
            assert_eq!(s.actions, vec!["dynamodb:Scan"]);
            let fields_only = !s.condition["ForAllValues:StringEquals"]["dynamodb:Attributes"]
                .is_null()
                && s.condition["StringEquals"]["dynamodb:Select"].as_str()
                    == Some("SPECIFIC_ATTRIBUTES");
            assert!(
                ["TokenRefresherFunction", "EnrichmentSweeperFunction"]
                    .contains(&s.function.as_str())
                    || (s.function == "DashboardApiFunction" && fields_only),
                "{} lists the tenants",
                s.function
            );
            continue;
        }
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
        if table.starts_with("TenantTable") {
            assert_eq!(keys, vec!["tenant#*"], "{}", s.function);
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
            // The one secret, or with many orgs those named <stack>/org/*.
            let either = secret_resource(&t, &s.function);
            assert_eq!(either.len(), 3, "{}: !If [MultiOrg, ...]", s.function);
            assert_eq!(either[0].as_str(), Some("MultiOrg"));
            assert!(
                sub(&either[1]).ends_with(":secret:${AWS::StackName}/org/*"),
                "{}",
                s.function
            );
            assert_eq!(
                reference(&either[2]),
                ("Ref".to_string(), "GenesysSecretArn".to_string())
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
    assert_eq!(
        t["Parameters"]["GenesysSecretArn"]["Default"].as_str(),
        Some("")
    );
}

/// The `Resource` of `function`'s Secrets Manager statement, as a sequence.
fn secret_resource(t: &Value, function: &str) -> Vec<Value> {
    t["Resources"][function]["Properties"]["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|p| p["Statement"].as_sequence().cloned().unwrap_or_default())
        .find(|s| s["Action"].as_str() == Some("secretsmanager:GetSecretValue"))
        .and_then(|s| match &s["Resource"] {
            Value::Tagged(tagged) if tagged.tag == "If" => tagged.value.as_sequence().cloned(),
            _ => None,
        })
        .unwrap_or_default()
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

/// The analytics table's org index is the one the code tags items for and
/// the tests' table has (`aws::create_analytics_table`): keys only, on
/// `org_shard`, with the attribute defined as a string.
#[test]
fn the_analytics_tables_org_index_is_the_one_the_code_writes() {
    use va_analytics::org_items::{ORG_ITEMS_INDEX, ORG_SHARD};
    let t = template();
    let p = &t["Resources"]["AnalyticsTable"]["Properties"];
    let indexes = p["GlobalSecondaryIndexes"].as_sequence().expect("indexes");
    assert_eq!(indexes.len(), 1);
    let index = &indexes[0];
    assert_eq!(index["IndexName"].as_str(), Some(ORG_ITEMS_INDEX));
    assert_eq!(
        index["Projection"]["ProjectionType"].as_str(),
        Some("KEYS_ONLY")
    );
    let keys = index["KeySchema"].as_sequence().expect("key schema");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["AttributeName"].as_str(), Some(ORG_SHARD));
    assert_eq!(keys[0]["KeyType"].as_str(), Some("HASH"));
    let defined = p["AttributeDefinitions"]
        .as_sequence()
        .expect("definitions")
        .iter()
        .any(|d| {
            d["AttributeName"].as_str() == Some(ORG_SHARD)
                && d["AttributeType"].as_str() == Some("S")
        });
    assert!(defined, "{ORG_SHARD} is defined as a string");
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
            ("Ref".into(), "QueueKey".into()),
            "{q}"
        );
    }
    // A single-org deployment has exactly one of the two rules (many orgs:
    // one per org, from infra/org.yaml).
    assert_eq!(r["BatchRule"]["Condition"].as_str(), Some("SingleOrgBatch"));
    assert_eq!(
        r["PerEventRule"]["Condition"].as_str(),
        Some("SingleOrgPerEvent")
    );
}

fn key_statements<'a>(t: &'a Value, key: &str) -> &'a [Value] {
    t["Resources"][key]["Properties"]["KeyPolicy"]["Statement"]
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// `!Sub` text of a value (or the plain string).
fn sub(v: &Value) -> String {
    reference(v).1
}

#[test]
fn the_queue_key_admits_only_this_stacks_rules_and_the_handlers_role_through_sqs() {
    let t = template();
    let statements = key_statements(&t, "QueueKey");
    let events = statements
        .iter()
        .find(|s| s["Principal"]["Service"].as_str() == Some("events.amazonaws.com"))
        .expect("a statement for EventBridge");
    assert_eq!(
        strings(&events["Action"]),
        vec!["kms:GenerateDataKey", "kms:Decrypt"]
    );
    // !If [MultiOrg, <stack>-* rules on Genesys buses, <stack>-* rules on the one bus].
    let either = match &events["Condition"]["ArnLike"]["aws:SourceArn"] {
        Value::Tagged(t) if t.tag == "If" => t.value.as_sequence().cloned().unwrap_or_default(),
        other => panic!("expected !If, got {other:?}"),
    };
    assert!(
        sub(&either[1]).contains(":rule/aws.partner/genesys.com/cloud/*/${AWS::StackName}-"),
        "with many orgs, this stack's rules on Genesys buses"
    );
    assert!(
        sub(&either[2]).contains(":rule/${GenesysEventSourceName}/${AWS::StackName}-"),
        "conditioned on this stack's rules"
    );
    assert!(!events["Condition"]["StringEquals"]["aws:SourceAccount"].is_null());
    let roles = statements
        .iter()
        .find(|s| s["Sid"].as_str() == Some("RolesOfThisAccountUseItForThisStacksQueuesOnly"))
        .expect("a statement for the functions' roles");
    assert!(sub(&roles["Condition"]["StringEquals"]["kms:ViaService"]).starts_with("sqs."));
    let queues: Vec<String> =
        roles["Condition"]["ForAnyValue:StringEquals"]["kms:EncryptionContext:aws:sqs:arn"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(sub)
            .collect();
    let r = &t["Resources"];
    for (q, name) in [
        ("DeadLetterQueue", "dead-letters"),
        ("EventQueue", "events"),
    ] {
        assert_eq!(
            sub(&r[q]["Properties"]["QueueName"]),
            format!("${{AWS::StackName}}-{name}"),
            "{q}"
        );
        assert!(
            queues
                .iter()
                .any(|a| a.ends_with(&format!(":${{AWS::StackName}}-{name}"))),
            "the key is confined to {q}: {queues:?}"
        );
    }
    // Nobody uses the key unconditioned: administering it is not using it.
    for s in statements {
        let actions = strings(&s["Action"]);
        let uses = actions.iter().any(|a| {
            a == "kms:*"
                || a.starts_with("kms:Decrypt")
                || a.starts_with("kms:GenerateDataKey")
                || a.starts_with("kms:Encrypt")
                || a.starts_with("kms:ReEncrypt")
        });
        assert!(
            !uses || !s["Condition"].is_null(),
            "unconditioned use: {:?}",
            s["Sid"]
        );
    }
    for s in statements {
        assert_ne!(s["Principal"].as_str(), Some("*"), "no open principal");
        assert_ne!(
            s["Principal"]["AWS"].as_str(),
            Some("*"),
            "no open principal"
        );
    }
    // The rules' own dead-letter config names the queue.
    for rule in ["PerEventRule", "BatchRule"] {
        let target = &r[rule]["Properties"]["Targets"][0];
        assert_eq!(
            reference(&target["DeadLetterConfig"]["Arn"]),
            ("GetAtt".into(), "DeadLetterQueue.Arn".into()),
            "{rule}"
        );
        assert_eq!(
            sub(&r[rule]["Properties"]["Name"]),
            "${AWS::StackName}-conversation-events"
        );
    }
}

#[test]
fn a_failed_invocation_has_one_path_to_the_dead_letter_queue() {
    let t = template();
    let f = &t["Resources"]["ConversationEventsFunction"]["Properties"];
    assert!(
        f["DeadLetterQueue"].is_null(),
        "no function DLQ beside the on-failure destination (two messages per failure)"
    );
    let on_failure = &f["EventInvokeConfig"]["DestinationConfig"]["OnFailure"];
    assert_eq!(on_failure["Type"].as_str(), Some("SQS"));
    assert_eq!(
        reference(&on_failure["Destination"]),
        ("GetAtt".into(), "DeadLetterQueue.Arn".into())
    );
    assert_eq!(
        reference(&f["Environment"]["Variables"]["DEAD_LETTER_QUEUE_URL"]),
        ("Ref".into(), "DeadLetterQueue".into()),
        "rejected events go to the same queue"
    );
}

#[test]
fn alarms_watch_every_way_an_event_can_be_lost_or_wait() {
    let t = template();
    let alarms: Vec<(String, String, String)> = t["Resources"]
        .as_mapping()
        .expect("resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|r| {
            let p = &r["Properties"];
            let dims = p["Dimensions"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|d| {
                    format!(
                        "{}={}",
                        d["Name"].as_str().unwrap_or_default(),
                        sub(&d["Value"])
                    )
                })
                .collect::<Vec<_>>()
                .join(",");
            (
                p["Namespace"].as_str().unwrap_or_default().to_string(),
                p["MetricName"].as_str().unwrap_or_default().to_string(),
                dims,
            )
        })
        .collect();
    let has = |ns: &str, metric: &str, dim: &str| {
        alarms
            .iter()
            .any(|(n, m, d)| n == ns && m == metric && d.contains(dim))
    };
    for (ns, metric, dim) in [
        (
            "AWS/Events",
            "FailedInvocations",
            "RuleName=${AWS::StackName}-conversation-events",
        ),
        (
            "AWS/Events",
            "InvocationsFailedToBeSentToDlq",
            "RuleName=${AWS::StackName}-conversation-events",
        ),
        (
            "AWS/Lambda",
            "DestinationDeliveryFailures",
            "FunctionName=ConversationEventsFunction",
        ),
        (
            "AWS/Lambda",
            "DeadLetterErrors",
            "FunctionName=ConversationEventsFunction",
        ),
        (
            "AWS/Lambda",
            "Throttles",
            "FunctionName=ConversationEventsFunction",
        ),
        (
            "AWS/Lambda",
            "Errors",
            "FunctionName=ConversationEventsFunction",
        ),
        (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "QueueName=DeadLetterQueue.QueueName",
        ),
        (
            "GenesysVirtualAgent",
            "RejectedEvents",
            "Function=conversation-events",
        ),
    ] {
        assert!(
            has(ns, metric, dim),
            "an alarm on {ns} {metric} ({dim}); have {alarms:?}"
        );
    }
}

#[test]
fn the_dashboard_reads_token_health_attributes_only_under_their_own_key() {
    let t = template();
    let all = statements(&t);
    let health: Vec<&Statement> = all
        .iter()
        .filter(|s| {
            s.function == "DashboardApiFunction"
                && s.resources.iter().any(|(_, r)| r.starts_with("TokenTable"))
        })
        .collect();
    assert_eq!(health.len(), 1);
    let s = health[0];
    assert_eq!(s.actions, vec!["dynamodb:GetItem"]);
    let allowed = attributes_equal(
        &s.condition,
        &token_store::attr::HEALTH,
        "the IAM list is the code's health projection",
    );
    for secret in [
        token_store::attr::ACCESS_TOKEN,
        token_store::attr::LAST_ERROR,
        token_store::attr::LEASE_OWNER,
    ] {
        assert!(
            !allowed.iter().any(|a| a == secret),
            "{secret} is not readable"
        );
    }
    assert_eq!(
        s.condition["StringEqualsIfExists"]["dynamodb:Select"].as_str(),
        Some("SPECIFIC_ATTRIBUTES")
    );
    // Each table has its own key; the dashboard may use the token table's
    // only through DynamoDB, for that table.
    let r = &t["Resources"];
    assert_eq!(
        reference(&r["TokenTable"]["Properties"]["SSESpecification"]["KMSMasterKeyId"]),
        ("Ref".into(), "TokenKey".into())
    );
    assert_eq!(
        reference(&r["AnalyticsTable"]["Properties"]["SSESpecification"]["KMSMasterKeyId"]),
        ("Ref".into(), "DataKey".into())
    );
    for s in all
        .iter()
        .filter(|s| s.resources.iter().any(|(_, r)| r == "TokenKey.Arn"))
    {
        assert!(
            !s.condition["StringEquals"]["kms:EncryptionContext:aws:dynamodb:tableName"].is_null(),
            "{}: the token key only for the token table",
            s.function
        );
    }
    let readers: Vec<&str> = all
        .iter()
        .filter(|s| s.resources.iter().any(|(_, r)| r == "TokenKey.Arn"))
        .map(|s| s.function.as_str())
        .collect();
    assert!(!readers.contains(&"ConversationEventsFunction"));
}

#[test]
fn the_dashboard_is_behind_a_sign_in_with_no_open_auth() {
    let t = template();
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"),
    )
    .expect("template");
    assert!(!text.contains("FunctionUrlConfig"), "no function URL");
    assert!(!text.contains("NONE"), "no open auth anywhere");
    assert!(
        !text.contains("AuthType"),
        "no function URL auth type, NONE or otherwise"
    );
    assert!(t["Parameters"]["DashboardAuth"].is_null());
    let r = &t["Resources"];
    let api = &r["DashboardHttpApi"]["Properties"]["Auth"];
    let jwt = &api["Authorizers"]["CognitoViewers"]["JwtConfiguration"];
    assert!(sub(&jwt["issuer"]).ends_with("${DashboardUserPool}"));
    assert_eq!(
        reference(&jwt["audience"][0]),
        ("Ref".into(), "DashboardUserPoolClient".into())
    );
    assert_eq!(
        r["DashboardUserPool"]["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"]
            .as_bool(),
        Some(true),
        "no self sign-up"
    );
    let events = r["DashboardApiFunction"]["Properties"]["Events"]
        .as_mapping()
        .expect("events");
    for (name, e) in events {
        let p = &e["Properties"];
        let guarded = p["Auth"]["Authorizer"].as_str() == Some("CognitoViewers");
        let path = p["Path"].as_str().unwrap_or_default();
        assert_eq!(
            guarded,
            !["/", "/api/sign-in"].contains(&path),
            "{name:?} {path}: only the page and the sign-in route are public"
        );
        assert!(
            ["/", "/api/sign-in", "/api/dashboard", "/api/orgs"].contains(&path),
            "{path}: a route the test does not know"
        );
    }
    let env = &r["DashboardApiFunction"]["Properties"]["Environment"]["Variables"];
    assert!(!env["AUTH_ISSUER"].is_null() && !env["AUTH_CLIENT_ID"].is_null());
}

/// The retention parameters reach both functions that write cells, with
/// the code's variable names and bounds.
#[test]
fn the_retention_parameters_reach_every_function_that_writes_cells() {
    use va_analytics::retention::{
        HOUR_CELL_RETENTION_DAYS, MAX_DAYS, MIN_DAYS, MINUTE_CELL_RETENTION_DAYS, Retention,
    };
    let t = template();
    let d = Retention::default();
    for (param, var, default) in [
        (
            "MinuteCellRetentionDays",
            MINUTE_CELL_RETENTION_DAYS,
            d.minute_cell_days,
        ),
        (
            "HourCellRetentionDays",
            HOUR_CELL_RETENTION_DAYS,
            d.hour_cell_days,
        ),
    ] {
        let p = &t["Parameters"][param];
        assert_eq!(p["Default"].as_u64(), Some(default), "{param}");
        assert_eq!(p["MinValue"].as_u64(), Some(MIN_DAYS), "{param}");
        assert_eq!(p["MaxValue"].as_u64(), Some(MAX_DAYS), "{param}");
        for f in ["ConversationEventsFunction", "EnrichmentSweeperFunction"] {
            let env = &t["Resources"][f]["Properties"]["Environment"]["Variables"];
            assert_eq!(
                reference(&env[var]),
                ("Ref".to_string(), param.to_string()),
                "{f} {var}"
            );
        }
    }
}

/// The stack says its release (the workspace's version, which the functions
/// log and the dashboard shows), CHANGELOG.md has an entry for it, and the
/// functions' names are outputs (the deploy guide's `aws lambda invoke`).
#[test]
fn the_stack_outputs_its_release_and_its_functions_names() {
    let t = template();
    assert_eq!(
        t["Outputs"]["Version"]["Value"].as_str(),
        Some(lambda_support::VERSION)
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../CHANGELOG.md");
    let changelog = std::fs::read_to_string(path).expect("CHANGELOG.md");
    assert!(
        changelog.contains(&format!("## [{}]", lambda_support::VERSION)),
        "CHANGELOG.md has an entry for {}",
        lambda_support::VERSION
    );
    for f in [
        "TokenRefresherFunction",
        "ConversationEventsFunction",
        "EnrichmentSweeperFunction",
        "DashboardApiFunction",
    ] {
        assert_eq!(
            reference(&t["Outputs"][format!("{f}Name").as_str()]["Value"]),
            ("Ref".to_string(), f.to_string()),
            "{f}"
        );
    }
}

#[test]
fn keys_the_analytics_table_and_the_dead_letters_outlive_the_stack() {
    let t = template();
    for name in [
        "DataKey",
        "TokenKey",
        "QueueKey",
        "AnalyticsTable",
        "DeadLetterQueue",
    ] {
        let r = &t["Resources"][name];
        assert_eq!(r["DeletionPolicy"].as_str(), Some("Retain"), "{name}");
        assert_eq!(r["UpdateReplacePolicy"].as_str(), Some("Retain"), "{name}");
    }
}

/// Tenant isolation in IAM: the dashboard's own role reads only the
/// implicit org's buckets; an org's buckets only through a session of
/// `DashboardOrgReaderRole` tagged with that org, whose policy matches the
/// tag against the leading key (`org#${aws:PrincipalTag/org}#agg#*`). The
/// function tags a session only with an org the viewer's groups grant
/// (`va_analytics::dashboard::access`, and end to end in
/// `orgs::a_viewer_of_one_org_...`). No Scan of the analytics table
/// anywhere; tenant items' fields only.
#[test]
fn the_dashboard_reaches_org_data_only_through_per_org_bucket_queries() {
    let t = template();
    let all = statements(&t);
    let dashboard: Vec<&Statement> = all
        .iter()
        .filter(|s| s.function == "DashboardApiFunction")
        .collect();
    // Besides the buckets, the layout item alone (read once per container,
    // va_analytics::layout).
    let (layout, analytics): (Vec<&Statement>, Vec<&Statement>) =
        on_table(&dashboard, "AnalyticsTable")
            .into_iter()
            .partition(|s| leading_keys(&s.condition) == vec!["layout"]);
    assert_eq!(layout.len(), 1);
    assert_eq!(layout[0].actions, vec!["dynamodb:GetItem"]);
    assert_eq!(analytics.len(), 1);
    assert_eq!(analytics[0].actions, vec!["dynamodb:Query"]);
    assert_eq!(
        leading_keys(&analytics[0].condition),
        vec!["agg#*", "flows", "hours", "dirty#*"]
    );
    // The per-org reader: assumed by the dashboard's role only, with exactly
    // one tag, `org`, shaped like an org id; it queries that org's buckets.
    let role = &t["Resources"]["DashboardOrgReaderRole"];
    assert_eq!(role["Condition"].as_str(), Some("MultiOrg"));
    let trust = &role["Properties"]["AssumeRolePolicyDocument"]["Statement"];
    assert_eq!(trust.as_sequence().map(Vec::len), Some(1));
    assert_eq!(
        reference(&trust[0]["Principal"]["AWS"]),
        ("GetAtt".into(), "DashboardApiFunctionRole.Arn".into())
    );
    assert_eq!(
        strings(&trust[0]["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]),
        vec!["org"]
    );
    assert_eq!(
        trust[0]["Condition"]["StringLike"]["aws:RequestTag/org"].as_str(),
        Some("????????-????-????-????-????????????")
    );
    let grants: Vec<&Value> = role["Properties"]["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|p| {
            p["PolicyDocument"]["Statement"]
                .as_sequence()
                .into_iter()
                .flatten()
        })
        .filter(|s| {
            strings(&s["Action"])
                .iter()
                .any(|a| a.starts_with("dynamodb:"))
        })
        .collect();
    assert_eq!(grants.len(), 1);
    assert_eq!(strings(&grants[0]["Action"]), vec!["dynamodb:Query"]);
    assert_eq!(
        leading_keys(&grants[0]["Condition"]),
        vec![
            "org#${aws:PrincipalTag/org}#agg#*",
            "org#${aws:PrincipalTag/org}#flows",
            "org#${aws:PrincipalTag/org}#hours",
            "org#${aws:PrincipalTag/org}#dirty#*"
        ]
    );
    assert_eq!(
        va_analytics::org_prefix("${aws:PrincipalTag/org}") + "agg#*",
        "org#${aws:PrincipalTag/org}#agg#*",
        "the policy's pattern is the code's key"
    );
    let assume: Vec<&&Statement> = dashboard
        .iter()
        .filter(|s| s.actions.iter().any(|a| a == "sts:AssumeRole"))
        .collect();
    assert_eq!(assume.len(), 1);
    // The role lives under this stack's path, and only that path is assumable.
    assert_eq!(sub(&role["Properties"]["Path"]), "/${AWS::StackName}/");
    assert!(
        role["Properties"]["RoleName"].is_null(),
        "a generated name fits any stack name"
    );
    assert!(
        assume[0].resources[0]
            .1
            .ends_with(":role/${AWS::StackName}/*"),
        "the function assumes only this stack's roles: {:?}",
        assume[0].resources
    );
    assert!(
        !all.iter().any(|s| s.function != "DashboardApiFunction"
            && s.actions.iter().any(|a| a.starts_with("sts:"))),
        "no other function assumes roles"
    );
    for s in all.iter().filter(|s| {
        s.resources
            .iter()
            .any(|(_, r)| r.starts_with("AnalyticsTable"))
    }) {
        assert!(
            !s.actions.iter().any(|a| a == "dynamodb:Scan"),
            "{}: no Scan of every org's items",
            s.function
        );
    }
    // One org's item, and the registry's list for the vendor's staff: the
    // code's tenant projection both times.
    let tenant = on_table(&dashboard, "TenantTable");
    assert_eq!(tenant.len(), 2);
    let actions: Vec<&str> = tenant.iter().map(|s| s.actions[0].as_str()).collect();
    assert_eq!(actions, vec!["dynamodb:GetItem", "dynamodb:Scan"]);
    for s in &tenant {
        assert_eq!(s.actions.len(), 1);
        attributes_equal(
            &s.condition,
            &token_store::tenants::ATTRIBUTES,
            "the IAM list is the code's tenant projection",
        );
    }
    // The org's key prefix is what the policies name.
    assert_eq!(va_analytics::org_prefix(""), "");
    assert_eq!(va_analytics::org_prefix("a"), "org#a#");
}

pub(crate) fn org_template() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/org.yaml");
    let text = std::fs::read_to_string(&path).expect("infra/org.yaml");
    serde_norway::from_str(&text).expect("valid YAML")
}

/// Adding an org is a stack of infra/org.yaml, not a template edit: its
/// rule takes only that org's events, is named so the main stack's queue
/// and key policies admit it, and dead-letters like the main rule.
#[test]
fn an_orgs_bus_and_rule_are_a_stack_of_their_own_that_the_main_stack_admits() {
    let org = org_template();
    let rule = &org["Resources"]["OrgRule"]["Properties"];
    assert_eq!(
        reference(&rule["EventPattern"]["source"][0]),
        ("Ref".into(), "OrgEventSourceName".into()),
        "only the org's own events"
    );
    assert_eq!(
        reference(&rule["EventBusName"]),
        ("Ref".into(), "OrgEventSourceName".into())
    );
    assert!(sub(&rule["Name"]).starts_with("${MainStackName}-"));
    // The alarms name the rule by its name: `!Ref` of a rule on a partner
    // bus is `<bus>|<rule>`, which no metric carries.
    for alarm in [
        "OrgRuleFailedInvocationsAlarm",
        "OrgRuleDeadLetterFailuresAlarm",
    ] {
        let dims = &org["Resources"][alarm]["Properties"]["Dimensions"];
        let rule_name = dims
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|d| d["Name"].as_str() == Some("RuleName"))
            .map(|d| reference(&d["Value"]))
            .expect("a RuleName dimension");
        assert_eq!(
            rule_name,
            ("Sub".to_string(), sub(&rule["Name"])),
            "{alarm}"
        );
    }
    let target = &rule["Targets"][0];
    assert!(!target["DeadLetterConfig"]["Arn"].is_null());
    assert_eq!(
        target["RetryPolicy"]["MaximumRetryAttempts"].as_u64(),
        Some(185)
    );
    let t = template();
    let detail_types = |r: &Value| strings(&r["EventPattern"]["detail-type"]);
    assert_eq!(
        detail_types(rule),
        detail_types(&t["Resources"]["PerEventRule"]["Properties"]),
        "the same topics as the single-org rule"
    );
    // The main stack admits <stack>-* rules on any Genesys bus with many orgs.
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"),
    )
    .expect("template");
    assert_eq!(
        text.matches("rule/aws.partner/genesys.com/cloud/*/${AWS::StackName}-*")
            .count(),
        4,
        "the dead-letter queue, the event queue, the queue key and the handler's permission"
    );
    for export in [
        "ConversationEventsFunctionArn",
        "DeadLetterQueueArn",
        "EventQueueArn",
    ] {
        assert!(
            sub(&t["Outputs"][export]["Export"]["Name"]).ends_with(export),
            "{export}"
        );
    }
    // With many orgs the functions find the registry.
    assert_eq!(
        reference(&t["Globals"]["Function"]["Environment"]["Variables"]["TENANTS_TABLE"]).0,
        "If"
    );
}

/// IAM `StringLike`: `*` any run of characters, `?` one character.
fn like(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some((b'?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// `function`'s statement `sid`.
fn statement(t: &Value, function: &str, sid: &str) -> Value {
    t["Resources"][function]["Properties"]["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|p| p["Statement"].as_sequence().cloned().unwrap_or_default())
        .map(|s| match s {
            Value::Tagged(t) if t.tag == "If" => t.value[1].clone(),
            s => s,
        })
        .find(|s| s["Sid"].as_str() == Some(sid))
        .unwrap_or_else(|| panic!("{function} has no statement {sid}"))
}

/// The `dynamodb:LeadingKeys` patterns of `function`'s statement `sid`.
fn patterns(t: &Value, function: &str, sid: &str) -> Vec<String> {
    leading_keys(&statement(t, function, sid)["Condition"])
}

/// The policies admit exactly the partitions the code builds, for the
/// implicit org and for an org: every key `AnalyticsStore` writes or reads
/// matches its function's patterns, and the dashboard's reader session for
/// one org matches that org's buckets and no other org's.
#[test]
fn leading_key_patterns_match_the_keys_the_store_builds() {
    let t = template();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build(),
    );
    let implicit = va_analytics::AnalyticsStore::new(client, "t");
    let (a, b) = (
        "0a000000-0000-4000-8000-00000000000a",
        "0b000000-0000-4000-8000-00000000000b",
    );
    let admitted = |patterns: &[String], key: &str| patterns.iter().any(|p| like(p, key));
    let writes = patterns(&t, "ConversationEventsFunction", "AnalyticsWrites");
    let state = patterns(&t, "ConversationEventsFunction", "ConversationStateRead");
    let pending = patterns(&t, "EnrichmentSweeperFunction", "PendingSessions");
    let enrich = patterns(&t, "EnrichmentSweeperFunction", "EnrichmentWrites");
    let roll_up = patterns(&t, "EnrichmentSweeperFunction", "RollUpReads");
    let marks = patterns(&t, "ConversationEventsFunction", "LateWriteMarks");
    let late = patterns(&t, "EnrichmentSweeperFunction", "LateEnrichmentMarks");
    assert_eq!(
        strings(&statement(&t, "EnrichmentSweeperFunction", "LateEnrichmentMarks")["Action"]),
        vec!["dynamodb:UpdateItem"]
    );
    // A mark is only ever added to: the handler cannot write hour cells.
    assert_eq!(
        strings(&statement(&t, "ConversationEventsFunction", "LateWriteMarks")["Action"]),
        vec!["dynamodb:UpdateItem"]
    );
    assert_eq!(
        strings(&statement(&t, "EnrichmentSweeperFunction", "RollUpReads")["Action"]),
        vec!["dynamodb:Query"]
    );
    let dashboard = patterns(&t, "DashboardApiFunction", "AggregatesRead");
    for store in [implicit.clone(), implicit.for_org(a)] {
        for (kind, key) in store.partition_kinds() {
            // Flow names and hour cells: the sweeper writes them, the
            // dashboard reads them. The handler only adds to dirty marks.
            assert_eq!(
                admitted(&writes, &key),
                !matches!(kind, "flow names" | "hours" | "dirty marks"),
                "handler writes {kind} {key}"
            );
            assert_eq!(
                admitted(&marks, &key),
                kind == "dirty marks",
                "handler marks {kind} {key}"
            );
            match kind {
                "state" => {
                    assert!(admitted(&state, &key), "handler reads {key}");
                    assert!(admitted(&enrich, &key), "sweeper {key}");
                }
                "pending" => assert!(admitted(&pending, &key), "sweeper lists {key}"),
                "buckets" => {
                    assert!(admitted(&roll_up, &key), "sweeper rolls up {key}");
                    assert!(admitted(&enrich, &key), "sweeper writes {key}");
                    assert!(!admitted(&pending, &key), "sweeper never deletes {key}");
                }
                "hours" => {
                    assert!(admitted(&enrich, &key), "sweeper writes {key}");
                    assert!(!admitted(&pending, &key), "sweeper never deletes {key}");
                }
                "dirty marks" => {
                    assert!(admitted(&pending, &key), "sweeper reads and clears {key}");
                    assert!(!admitted(&enrich, &key), "sweeper never puts {key}");
                    // A give-up or a late enrichment marks its hour (issue 22).
                    assert!(admitted(&late, &key), "sweeper adds to {key}");
                }
                _ => assert!(admitted(&enrich, &key), "sweeper writes {kind} {key}"),
            }
            // The dashboard's own role: the implicit org's buckets and names only.
            assert_eq!(
                admitted(&dashboard, &key),
                matches!(kind, "buckets" | "flow names" | "hours" | "dirty marks")
                    && store.prefix().is_empty(),
                "dashboard role and {key}"
            );
        }
    }
    // The reader role, its tag set to org A.
    let role = &t["Resources"]["DashboardOrgReaderRole"]["Properties"]["Policies"][0]["PolicyDocument"]
        ["Statement"][0];
    let tagged: Vec<String> = leading_keys(&role["Condition"])
        .iter()
        .map(|p| p.replace("${aws:PrincipalTag/org}", a))
        .collect();
    for (kind, key) in implicit.for_org(a).partition_kinds() {
        assert_eq!(
            admitted(&tagged, &key),
            matches!(kind, "buckets" | "flow names" | "hours" | "dirty marks"),
            "org A's {kind}"
        );
    }
    for (_, key) in implicit
        .for_org(b)
        .partition_kinds()
        .into_iter()
        .chain(implicit.partition_kinds())
    {
        assert!(
            !admitted(&tagged, &key),
            "org A's session never reads {key}"
        );
    }
}

/// The dashboard's throttle comes from the deployment's request budget (150
/// orgs, 5 tabs each, a minute view refreshing every 5 s: 150 a second), not
/// a fixed 10 a second that 50 tabs across every customer used up.
#[test]
fn the_dashboards_throttle_fits_150_orgs_by_default() {
    let t = template();
    let settings = &t["Resources"]["DashboardHttpApi"]["Properties"]["DefaultRouteSettings"];
    let param = |field: &str| {
        let (kind, name) = reference(&settings[field]);
        assert_eq!(kind, "Ref", "{field}");
        t["Parameters"][name.as_str()]["Default"]
            .as_u64()
            .expect("a number")
    };
    let (rate, burst) = (param("ThrottlingRateLimit"), param("ThrottlingBurstLimit"));
    let budget = 150 * 5 / 5;
    assert!(rate >= budget, "{rate} a second for a budget of {budget}");
    assert!(burst >= 2 * budget, "burst {burst}");
}
