//! Every resource-based policy the stacks write, sized at 1,000 orgs against
//! its service's limit. An org stack (infra/org.yaml) must add nothing to a
//! shared policy: the main stack admits every org's rule by pattern.
//!
//! Limits: a Lambda function's policy 20 KB, not adjustable (AWS Knowledge
//! Center, "lambda-resource-based-policy-size-error"); an SQS queue policy
//! 8,192 bytes and 20 statements (SQS Developer Guide, "Amazon SQS policy
//! quotas"); a KMS key policy 32,768 bytes (KMS Developer Guide, "Creating a
//! key policy": "Up to 32 kilobytes (32,768 bytes)").

use serde_json::{Value as Json, json};
use serde_norway::Value as Yaml;
use testkit::iam::template::{StackNames, Template, example_names};

const ORGS: usize = 1_000;
const LAMBDA_POLICY_LIMIT: usize = 20 * 1024;
const SQS_POLICY_LIMIT: usize = 8_192;
const SQS_STATEMENT_LIMIT: usize = 20;
const KMS_POLICY_LIMIT: usize = 32 * 1024;
/// A long stack name (CloudFormation allows 128 characters): every ARN in
/// the policies carries it, so the sizes are an upper bound for real names.
const STACK: &str = "genesys-virtual-agent-analytics-premium-app-vendor-production-eu";

/// The statement Lambda's `AddPermission` writes for one permission: what a
/// CloudFormation `AWS::Lambda::Permission` (or SAM's implicit one) adds.
fn lambda_statement(sid: &str, function_arn: &str, props: &Json) -> Json {
    let mut condition = serde_json::Map::new();
    if let Some(account) = props.get("SourceAccount") {
        condition.insert("StringEquals".into(), json!({"AWS:SourceAccount": account}));
    }
    if let Some(arn) = props.get("SourceArn") {
        condition.insert("ArnLike".into(), json!({"AWS:SourceArn": arn}));
    }
    json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": props.get("Principal").cloned().unwrap_or(json!("events.amazonaws.com"))},
        "Action": "lambda:InvokeFunction",
        "Resource": function_arn,
        "Condition": condition,
    })
}

fn size(policy: &Json) -> usize {
    serde_json::to_string(policy).map_or(usize::MAX, |s| s.len())
}

fn resources(yaml: &Yaml) -> Vec<(String, String)> {
    yaml["Resources"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(id, r)| Some((id.as_str()?.to_string(), r["Type"].as_str()?.to_string())))
        .collect()
}

/// Bytes one org stack adds to each shared policy: its permissions and
/// policies on resources it does not own, each rendered with every
/// intrinsic replaced by a 100-character value.
fn per_org_additions(org: &Yaml) -> Vec<(String, usize)> {
    fn flatten(v: &Yaml) -> Json {
        match v {
            Yaml::Tagged(_) => Json::String("x".repeat(100)),
            Yaml::Mapping(m) => Json::Object(
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), flatten(v))))
                    .collect(),
            ),
            Yaml::Sequence(s) => Json::Array(s.iter().map(flatten).collect()),
            Yaml::String(s) => Json::String(s.clone()),
            other => Json::String(format!("{other:?}")),
        }
    }
    const SHARED: [&str; 5] = [
        "AWS::Lambda::Permission",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::TopicPolicy",
        "AWS::Events::EventBusPolicy",
        "AWS::KMS::Key",
    ];
    resources(org)
        .into_iter()
        .filter(|(_, kind)| SHARED.contains(&kind.as_str()))
        .map(|(id, kind)| {
            let props = flatten(&org["Resources"][id.as_str()]["Properties"]);
            let added = match kind.as_str() {
                "AWS::Lambda::Permission" => size(&lambda_statement(
                    &format!("{STACK}-org-xxxxxxxxxxxxxxx-{id}-XXXXXXXXXXXX"),
                    &"x".repeat(100),
                    &props,
                )),
                _ => size(&props),
            };
            (format!("{id} ({kind})"), added)
        })
        .collect()
}

/// The main stack's Lambda policies: its own permissions (every delivery
/// mode's, an upper bound) and one statement per SAM event source.
fn lambda_policies(t: &Template, yaml: &Yaml, names: &StackNames) -> Vec<(String, Json)> {
    let mut by_function: std::collections::BTreeMap<String, Vec<Json>> = Default::default();
    for (id, kind) in resources(yaml) {
        let arn = |f: &str| format!("arn:aws:lambda:us-east-1:123456789012:function:{STACK}-{f}");
        if kind == "AWS::Lambda::Permission" {
            let Some(props) = t
                .resolve(names, &["Resources", id.as_str(), "Properties"])
                .expect("resolves")
            else {
                continue;
            };
            let function = match &yaml["Resources"][id.as_str()]["Properties"]["FunctionName"] {
                Yaml::Tagged(tag) => tag.value.as_str().unwrap_or_default().to_string(),
                other => other.as_str().unwrap_or_default().to_string(),
            };
            let sid = format!("{STACK}-{id}-ABCDEFGHIJKL");
            by_function
                .entry(function.clone())
                .or_default()
                .push(lambda_statement(&sid, &arn(&function), &props));
        }
        if kind == "AWS::Serverless::Function" {
            for (event, _) in yaml["Resources"][id.as_str()]["Properties"]["Events"]
                .as_mapping()
                .into_iter()
                .flatten()
            {
                let source = format!(
                    "arn:aws:execute-api:us-east-1:123456789012:abcdefghij/*/*/{}",
                    event.as_str().unwrap_or_default()
                );
                let props = json!({"SourceArn": source, "Principal": "apigateway.amazonaws.com"});
                let sid = format!(
                    "{STACK}-{id}{}Permission-ABCDEFGHIJKL",
                    event.as_str().unwrap_or_default()
                );
                by_function
                    .entry(id.clone())
                    .or_default()
                    .push(lambda_statement(&sid, &arn(&id), &props));
            }
        }
    }
    by_function
        .into_iter()
        .map(|(f, statements)| {
            (
                f,
                json!({"Version": "2012-10-17", "Id": "default", "Statement": statements}),
            )
        })
        .collect()
}

#[test]
fn no_shared_policy_grows_with_the_orgs_and_each_fits_its_limit_at_1000_orgs() {
    let text = |file: &str| {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../infra")
                .join(file),
        )
        .expect("template")
    };
    let org: Yaml = serde_norway::from_str(&text("org.yaml")).expect("org.yaml");
    let additions = per_org_additions(&org);
    assert!(
        additions.is_empty(),
        "an org stack adds to a shared policy, {ORGS} orgs would add {:?} bytes",
        additions
            .iter()
            .map(|(what, bytes)| (what.clone(), bytes * ORGS))
            .collect::<Vec<_>>()
    );

    let yaml: Yaml = serde_norway::from_str(&text("template.yaml")).expect("template.yaml");
    let t = Template::main().expect("template");
    let mut checked = Vec::new();
    for (multi_org, batch) in [(true, false), (true, true), (false, false), (false, true)] {
        let names = example_names(STACK, multi_org, batch);
        let mode = format!("multi_org={multi_org} batch={batch}");
        for (function, policy) in lambda_policies(&t, &yaml, &names) {
            checked.push(format!(
                "{mode} Lambda {function}: {} of {LAMBDA_POLICY_LIMIT}",
                size(&policy)
            ));
            assert!(
                size(&policy) <= LAMBDA_POLICY_LIMIT,
                "{mode}: {function}'s policy is {} bytes",
                size(&policy)
            );
        }
        for queue in ["DeadLetterQueue", "EventQueue"] {
            let Ok(Some(policy)) = t.queue_policy(&names, queue) else {
                continue;
            };
            let statements = policy["Statement"].as_array().map_or(0, Vec::len);
            checked.push(format!(
                "{mode} SQS {queue}: {} of {SQS_POLICY_LIMIT}, {statements} statements",
                size(&policy)
            ));
            assert!(
                size(&policy) <= SQS_POLICY_LIMIT && statements <= SQS_STATEMENT_LIMIT,
                "{mode}: {queue}'s policy is {} bytes, {statements} statements",
                size(&policy)
            );
        }
        for key in ["DataKey", "TokenKey", "QueueKey"] {
            let Ok(Some(policy)) = t.key_policy(&names, key) else {
                continue;
            };
            checked.push(format!(
                "{mode} KMS {key}: {} of {KMS_POLICY_LIMIT}",
                size(&policy)
            ));
            assert!(
                size(&policy) <= KMS_POLICY_LIMIT,
                "{mode}: {key}'s policy is {} bytes",
                size(&policy)
            );
        }
    }
    println!("{}", checked.join("\n"));
    let handler = "multi_org=true batch=false Lambda ConversationEventsFunction";
    assert!(
        checked.iter().any(|c| c.starts_with(handler)),
        "the handler's permission for every org's rule was sized: {checked:#?}"
    );
    assert!(checked.iter().filter(|c| c.contains(" KMS ")).count() >= 8);
}

/// The check above fails on the org stack this issue replaced: one
/// `AWS::Lambda::Permission` per org.
#[test]
fn a_permission_per_org_would_pass_the_lambda_limit_long_before_1000_orgs() {
    let old: Yaml = serde_norway::from_str(
        "Resources:\n  OrgRulePermission:\n    Type: AWS::Lambda::Permission\n    Properties:\n      Action: lambda:InvokeFunction\n      FunctionName: !ImportValue x\n      Principal: events.amazonaws.com\n      SourceArn: !GetAtt OrgRule.Arn\n",
    )
    .expect("yaml");
    let additions = per_org_additions(&old);
    let per_org: usize = additions.iter().map(|(_, b)| b).sum();
    assert!(per_org > 300, "{additions:?}");
    let orgs_that_fit = LAMBDA_POLICY_LIMIT / per_org;
    println!("a permission per org: {per_org} bytes an org, {orgs_that_fit} orgs fit in 20 KB");
    assert!(
        orgs_that_fit < 100,
        "{per_org} bytes an org: {orgs_that_fit} orgs fit in 20 KB"
    );
}
