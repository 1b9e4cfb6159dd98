//! What IAM authorizes for one API call: its actions, resources and
//! condition keys, read from the request as the service receives it.
//!
//! The harness's tables are keyed by `pk` (and `sk`), so `pk` is the
//! partition key whose values are `dynamodb:LeadingKeys`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::policy::Context;

/// moto's default account and the harness's region.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
/// The partition key of every table the harness creates.
const PARTITION_KEY: &str = "pk";

/// The services the double authorizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    Sqs,
    SecretsManager,
    Sts,
    Kms,
    /// Cognito user pools: the dashboard's sign-in (public operations) and
    /// test set-up.
    Cognito,
    /// EventBridge: `va-admin` counts the account's event buses.
    Events,
    Other,
}

/// One API call as received: the service, the operation, the signer's access key.
#[derive(Debug, Clone)]
pub struct Call {
    pub service: Service,
    pub operation: String,
    pub access_key: Option<String>,
    /// The JSON body (JSON protocols) or the form fields as a JSON object (query protocol).
    pub body: Value,
}

/// One authorization an API call needs: a single IAM action on a resource.
#[derive(Debug, Clone)]
pub struct Check {
    pub action: String,
    pub resource: String,
    pub context: Context,
}

impl Call {
    /// Reads the service, operation and signer from the headers and body.
    pub fn read(headers: &axum::http::HeaderMap, body: &[u8]) -> Self {
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
        let access_key = access_key(header("authorization"));
        let target = header("x-amz-target");
        if let Some((prefix, op)) = target.split_once('.') {
            let service = match prefix {
                "DynamoDB_20120810" => Service::DynamoDb,
                "AmazonSQS" => Service::Sqs,
                "secretsmanager" => Service::SecretsManager,
                "TrentService" => Service::Kms,
                "AWSCognitoIdentityProviderService" => Service::Cognito,
                "AWSEvents" => Service::Events,
                _ => Service::Other,
            };
            let body = serde_json::from_slice(body).unwrap_or(Value::Null);
            return Self {
                service,
                operation: op.to_string(),
                access_key,
                body,
            };
        }
        // The query protocol (STS): form fields.
        let form: BTreeMap<String, String> = url_form(body);
        let service = match scope_service(header("authorization")) {
            Some("sts") => Service::Sts,
            Some("sqs") => Service::Sqs,
            _ => Service::Other,
        };
        Self {
            service,
            operation: form.get("Action").cloned().unwrap_or_default(),
            access_key,
            body: serde_json::to_value(form).unwrap_or(Value::Null),
        }
    }

    fn str(&self, field: &str) -> Option<&str> {
        self.body.get(field).and_then(Value::as_str)
    }

    /// The checks IAM makes for this call; `secret_arn` resolves a secret's
    /// name to its ARN (policies name the ARN, requests may name either).
    pub fn checks(&self, secret_arn: &dyn Fn(&str) -> Option<String>) -> Vec<Check> {
        match self.service {
            Service::DynamoDb => dynamodb_checks(&self.operation, &self.body),
            Service::Sqs => {
                let queue = self.str("QueueUrl").map(queue_arn).unwrap_or("*".into());
                vec![check(format!("sqs:{}", self.operation), queue)]
            }
            Service::SecretsManager => {
                // CreateSecret names the secret; the others identify it.
                let id = self
                    .str("SecretId")
                    .or_else(|| self.str("Name"))
                    .unwrap_or("*");
                let arn = if id.starts_with("arn:") {
                    id.to_string()
                } else {
                    secret_arn(id).unwrap_or_else(|| secret_name_arn(id))
                };
                vec![check(format!("secretsmanager:{}", self.operation), arn)]
            }
            Service::Sts => sts_checks(&self.operation, &self.body),
            Service::Kms => vec![check(
                format!("kms:{}", self.operation),
                self.str("KeyId").unwrap_or("*").to_string(),
            )],
            // Service Authorization Reference, Amazon EventBridge:
            // ListEventBuses and ListRules name no resource (no resource
            // types); the rule actions name the rule,
            // `rule/<bus>/<rule>` on a custom or partner bus
            // (rule-on-custom-event-bus) and `rule/<rule>` on the default
            // bus (rule-on-default-event-bus); the rest name a bus.
            Service::Events => {
                let bus = self.str("EventBusName").unwrap_or("default");
                let resource = match self.operation.as_str() {
                    "ListEventBuses" | "ListRules" => "*".to_string(),
                    "DisableRule" | "EnableRule" | "DescribeRule" | "PutRule" | "DeleteRule"
                    | "PutTargets" | "RemoveTargets" | "ListTargetsByRule" => {
                        let rule = self.str("Name").or_else(|| self.str("Rule")).unwrap_or("*");
                        if bus == "default" {
                            format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}")
                        } else {
                            format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/{bus}/{rule}")
                        }
                    }
                    _ => format!(
                        "arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{}",
                        self.str("EventBusName")
                            .or_else(|| self.str("Name"))
                            .unwrap_or("default")
                    ),
                };
                vec![check(format!("events:{}", self.operation), resource)]
            }
            Service::Cognito | Service::Other => {
                vec![check(format!("unknown:{}", self.operation), "*".into())]
            }
        }
    }
}

fn check(action: String, resource: String) -> Check {
    Check {
        action,
        resource,
        context: Context::new(),
    }
}

/// The access key id of a SigV4 `Authorization` header.
fn access_key(auth: &str) -> Option<String> {
    let rest = auth.split("Credential=").nth(1)?;
    Some(rest.split('/').next()?.to_string())
}

/// The service named in the SigV4 credential scope.
fn scope_service(auth: &str) -> Option<&str> {
    let rest = auth.split("Credential=").nth(1)?;
    rest.split(',').next()?.split('/').nth(3)
}

fn url_form(body: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((decode(k), decode(v)))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `http://host/<account>/<name>` -> `arn:aws:sqs:<region>:<account>:<name>`.
pub fn queue_arn(url: &str) -> String {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let name = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or(ACCOUNT);
    format!("arn:aws:sqs:{REGION}:{account}:{name}")
}

pub fn table_arn(table: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}")
}

/// A secret named in a request that does not exist: an ARN no suffix
/// pattern of a policy matches by accident.
fn secret_name_arn(name: &str) -> String {
    format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}")
}

/// DynamoDB's checks. Transactions are authorized item by item as the
/// underlying single-item action ("Using IAM with DynamoDB transactions":
/// Put, Update and Delete need PutItem, UpdateItem and DeleteItem;
/// ConditionCheck needs dynamodb:ConditionCheckItem), with
/// `dynamodb:EnclosingOperation` naming the transaction.
fn dynamodb_checks(op: &str, body: &Value) -> Vec<Check> {
    fn table(b: &Value) -> &str {
        b.get("TableName").and_then(Value::as_str).unwrap_or("*")
    }
    match op {
        "TransactWriteItems" => body
            .get("TransactItems")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let (kind, inner) = item.as_object()?.iter().next()?;
                let action = match kind.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    _ => return None,
                };
                let mut c = item_check(action, table(inner), inner);
                c.context
                    .set("dynamodb:EnclosingOperation", "TransactWriteItems");
                Some(c)
            })
            .collect(),
        "TransactGetItems" => body
            .get("TransactItems")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let inner = item.get("Get")?;
                let mut c = item_check("GetItem", table(inner), inner);
                c.context
                    .set("dynamodb:EnclosingOperation", "TransactGetItems");
                Some(c)
            })
            .collect(),
        "BatchWriteItem" => {
            // The batch's own action, then each request's key (the
            // service authorization reference lists LeadingKeys for it).
            let mut out = Vec::new();
            for (t, requests) in body
                .get("RequestItems")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let mut keys = Vec::new();
                for r in requests.as_array().into_iter().flatten() {
                    let key = r
                        .pointer("/PutRequest/Item")
                        .or_else(|| r.pointer("/DeleteRequest/Key"));
                    keys.extend(key.and_then(partition_value));
                }
                let mut c = check("dynamodb:BatchWriteItem".into(), table_arn(t));
                c.context.set_all("dynamodb:LeadingKeys", keys);
                out.push(c);
            }
            out
        }
        "GetItem" | "PutItem" | "UpdateItem" | "DeleteItem" | "Query" | "Scan" => {
            vec![item_check(op, table(body), body)]
        }
        _ => {
            let resource = match body.get("TableName").and_then(Value::as_str) {
                Some(t) => table_arn(t),
                None => body
                    .get("ResourceArn")
                    .and_then(Value::as_str)
                    .unwrap_or("*")
                    .to_string(),
            };
            vec![check(format!("dynamodb:{op}"), resource)]
        }
    }
}

/// One item action (or Query/Scan) with its condition keys.
fn item_check(action: &str, table: &str, body: &Value) -> Check {
    let names = body.get("ExpressionAttributeNames");
    let resource = match body.get("IndexName").and_then(Value::as_str) {
        Some(index) => format!("{}/index/{index}", table_arn(table)),
        None => table_arn(table),
    };
    let mut c = check(format!("dynamodb:{action}"), resource);
    let leading = match action {
        "PutItem" => body.get("Item").and_then(partition_value),
        "Query" => body
            .get("KeyConditionExpression")
            .and_then(Value::as_str)
            .and_then(|e| query_partition(e, names, body.get("ExpressionAttributeValues"))),
        "Scan" => None,
        _ => body.get("Key").and_then(partition_value),
    };
    if let Some(pk) = leading {
        c.context.set_all("dynamodb:LeadingKeys", vec![pk]);
    }
    let projection = body.get("ProjectionExpression").and_then(Value::as_str);
    match action {
        "GetItem" | "Query" | "Scan" => {
            // A read names its attributes through a projection; without one
            // it reads them all. ASSUMPTION (labelled, no AWS text found):
            // GetItem, which has no Select parameter, presents
            // dynamodb:Select as Query does: SPECIFIC_ATTRIBUTES with a
            // projection, ALL_ATTRIBUTES without.
            // (Switch `VA_IAM_GETITEM_PRESENTS_SELECT`.)
            let select = body.get("Select").and_then(Value::as_str);
            let select = match (select, projection) {
                (Some(s), _) => Some(s.to_string()),
                (None, Some(_)) => Some("SPECIFIC_ATTRIBUTES".into()),
                (None, None) if action != "GetItem" => Some("ALL_ATTRIBUTES".into()),
                (None, None) => super::assumptions::assumptions()
                    .getitem_presents_select
                    .then(|| "ALL_ATTRIBUTES".into()),
            };
            if let Some(select) = select {
                c.context.set("dynamodb:Select", select);
            }
            if let Some(p) = projection {
                c.context
                    .set_all("dynamodb:Attributes", top_level_names(p, names));
            }
        }
        "PutItem" => {
            let attrs = body
                .get("Item")
                .and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            c.context.set_all("dynamodb:Attributes", attrs);
        }
        "UpdateItem" => {
            // The key's and the expressions' top-level attribute names.
            let mut attrs: BTreeSet<String> = body
                .get("Key")
                .and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            for field in ["UpdateExpression", "ConditionExpression"] {
                if let Some(e) = body.get(field).and_then(Value::as_str) {
                    attrs.extend(expression_names(e, names));
                }
            }
            c.context
                .set_all("dynamodb:Attributes", attrs.into_iter().collect());
        }
        _ => {}
    }
    if let Some(rv) = body.get("ReturnValues").and_then(Value::as_str) {
        c.context.set("dynamodb:ReturnValues", rv);
    }
    if let Some(rcc) = body.get("ReturnConsumedCapacity").and_then(Value::as_str) {
        c.context.set("dynamodb:ReturnConsumedCapacity", rcc);
    }
    c
}

/// The partition key's value of an item or key, as text.
fn partition_value(item: &Value) -> Option<String> {
    item.get(PARTITION_KEY).and_then(partition_scalar)
}

/// The partition key's value in a key condition such as `pk = :p AND sk > :s`.
fn query_partition(expr: &str, names: Option<&Value>, values: Option<&Value>) -> Option<String> {
    for clause in split_and(expr) {
        let Some((left, right)) = clause.split_once('=') else {
            continue;
        };
        let (left, right) = (left.trim().trim_start_matches('('), right.trim());
        let right = right.trim_end_matches(')').trim();
        if resolve_name(left, names) == PARTITION_KEY && right.starts_with(':') {
            return values?.get(right).and_then(partition_scalar);
        }
    }
    None
}

fn partition_scalar(v: &Value) -> Option<String> {
    v.get("S")
        .or_else(|| v.get("N"))
        .or_else(|| v.get("B"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn split_and(expr: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = expr;
    loop {
        let upper = rest.to_ascii_uppercase();
        match upper.find(" AND ") {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + 5..];
            }
            None => {
                out.push(rest);
                return out;
            }
        }
    }
}

fn resolve_name(token: &str, names: Option<&Value>) -> String {
    if token.starts_with('#')
        && let Some(n) = names.and_then(|n| n.get(token)).and_then(Value::as_str)
    {
        return n.to_string();
    }
    token.to_string()
}

/// The top-level attribute of each path of a projection (`a.b`, `c[0]` -> a, c).
fn top_level_names(projection: &str, names: Option<&Value>) -> Vec<String> {
    let set: BTreeSet<String> = projection
        .split(',')
        .map(|p| {
            let first = p.trim().split(['.', '[']).next().unwrap_or_default();
            resolve_name(first, names)
        })
        .filter(|n| !n.is_empty())
        .collect();
    set.into_iter().collect()
}

/// The attribute names an update or condition expression touches: its
/// `#name` placeholders resolved and its bare names, less keywords,
/// functions and `:values`.
fn expression_names(expr: &str, names: Option<&Value>) -> BTreeSet<String> {
    const WORDS: &[&str] = &[
        "SET",
        "ADD",
        "REMOVE",
        "DELETE",
        "AND",
        "OR",
        "NOT",
        "BETWEEN",
        "IN",
        "if_not_exists",
        "list_append",
        "attribute_exists",
        "attribute_not_exists",
        "attribute_type",
        "begins_with",
        "contains",
        "size",
    ];
    let mut out = BTreeSet::new();
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut BTreeSet<String>, next: char| {
        let t = std::mem::take(token);
        if t.is_empty() || t.starts_with(':') || next == '(' {
            return;
        }
        if WORDS.iter().any(|w| w.eq_ignore_ascii_case(&t)) || t.parse::<f64>().is_ok() {
            return;
        }
        out.insert(resolve_name(&t, names));
    };
    let mut in_path = false;
    for ch in expr.chars() {
        if ch.is_alphanumeric() || ch == '_' || ch == '#' || ch == ':' || ch == '-' {
            if !in_path {
                token.push(ch);
            }
        } else {
            let was_path = in_path;
            if !was_path {
                flush(&mut token, &mut out, ch);
            }
            // Nested paths (`a.b`, `a[0]`) touch only their top-level attribute.
            in_path = ch == '.' || (ch == '[') || (in_path && ch == ']');
            if ch == ']' {
                in_path = false;
            }
        }
    }
    flush(&mut token, &mut out, ' ');
    out
}

/// STS: AssumeRole needs `sts:AssumeRole` on the role and, with session
/// tags, `sts:TagSession` ("Passing session tags in AWS STS": required
/// permissions), with `aws:RequestTag/<k>` and `aws:TagKeys`.
fn sts_checks(op: &str, body: &Value) -> Vec<Check> {
    let role = body
        .get("RoleArn")
        .and_then(Value::as_str)
        .unwrap_or("*")
        .to_string();
    let mut tags = Vec::new();
    for i in 1.. {
        let k = body
            .get(format!("Tags.member.{i}.Key"))
            .and_then(Value::as_str);
        let v = body
            .get(format!("Tags.member.{i}.Value"))
            .and_then(Value::as_str);
        match (k, v) {
            (Some(k), Some(v)) => tags.push((k.to_string(), v.to_string())),
            _ => break,
        }
    }
    let mut context = Context::new();
    for (k, v) in &tags {
        context.set(&format!("aws:RequestTag/{k}"), v.clone());
    }
    if !tags.is_empty() {
        context.set_all("aws:TagKeys", tags.iter().map(|(k, _)| k.clone()).collect());
    }
    let mut out = vec![Check {
        action: format!("sts:{op}"),
        resource: role.clone(),
        context: context.clone(),
    }];
    if op == "AssumeRole" && !tags.is_empty() {
        out.push(Check {
            action: "sts:TagSession".into(),
            resource: role,
            context,
        });
    }
    out
}

/// The session tags an AssumeRole request asks for.
pub fn session_tags(call: &Call) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    for i in 1.. {
        let k = call.str(&format!("Tags.member.{i}.Key"));
        let v = call.str(&format!("Tags.member.{i}.Value"));
        match (k, v) {
            (Some(k), Some(v)) => tags.insert(k.to_string(), v.to_string()),
            _ => break,
        };
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(c: &Check, key: &str) -> Vec<String> {
        c.context
            .get(key)
            .map(<[String]>::to_vec)
            .unwrap_or_default()
    }

    #[test]
    fn a_transaction_is_authorized_item_by_item() {
        let body = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "event#1"}, "sk": {"S": "x"}}}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "dirty#s03"}, "sk": {"S": "h"}},
                        "UpdateExpression": "ADD #n :one", "ExpressionAttributeNames": {"#n": "n"}}},
            {"Delete": {"TableName": "t", "Key": {"pk": {"S": "pending#enrichment"}, "sk": {"S": "1"}}}},
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "conv#1"}}}},
        ]});
        let checks = dynamodb_checks("TransactWriteItems", &body);
        let actions: Vec<&str> = checks.iter().map(|c| c.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:ConditionCheckItem"
            ]
        );
        assert_eq!(keys(&checks[1], "dynamodb:LeadingKeys"), ["dirty#s03"]);
        assert_eq!(keys(&checks[1], "dynamodb:Attributes"), ["n", "pk", "sk"]);
        assert_eq!(
            keys(&checks[0], "dynamodb:EnclosingOperation"),
            ["TransactWriteItems"]
        );
        assert_eq!(checks[2].resource, table_arn("t"));
    }

    #[test]
    fn a_query_names_its_partition_and_a_projection_its_attributes() {
        let body = json!({"TableName": "t",
            "KeyConditionExpression": "#p = :p AND sk BETWEEN :a AND :b",
            "ExpressionAttributeNames": {"#p": "pk", "#x": "expires_at"},
            "ExpressionAttributeValues": {":p": {"S": "org#o#agg#s01"}, ":a": {"S": "1"}, ":b": {"S": "2"}},
            "ProjectionExpression": "pk, #x, cells.a"});
        let c = &dynamodb_checks("Query", &body)[0];
        assert_eq!(keys(c, "dynamodb:LeadingKeys"), ["org#o#agg#s01"]);
        assert_eq!(
            keys(c, "dynamodb:Attributes"),
            ["cells", "expires_at", "pk"]
        );
        assert_eq!(keys(c, "dynamodb:Select"), ["SPECIFIC_ATTRIBUTES"]);
        let all = json!({"TableName": "t", "Key": {"pk": {"S": "token#a"}}});
        let g = &dynamodb_checks("GetItem", &all)[0];
        assert_eq!(keys(g, "dynamodb:Select"), ["ALL_ATTRIBUTES"]);
        assert!(g.context.get("dynamodb:Attributes").is_none());
    }

    #[test]
    fn signer_service_and_form_fields_are_read() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKEY/20261205/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=x"
                .parse()
                .expect("header"),
        );
        let call = Call::read(
            &h,
            b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&Tags.member.1.Key=org&Tags.member.1.Value=o1",
        );
        assert_eq!(call.service, Service::Sts);
        assert_eq!(call.access_key.as_deref(), Some("AKEY"));
        let checks = call.checks(&|_| None);
        assert_eq!(checks[0].resource, "arn:aws:iam::1:role/r");
        assert_eq!(checks[1].action, "sts:TagSession");
        assert_eq!(keys(&checks[0], "aws:RequestTag/org"), ["o1"]);
        assert_eq!(keys(&checks[0], "aws:TagKeys"), ["org"]);
    }

    #[test]
    fn rule_actions_name_the_rule_on_its_bus_and_listing_names_nothing() {
        let call = |op: &str, body: Value| Call {
            service: Service::Events,
            operation: op.into(),
            access_key: None,
            body,
        };
        let bus = "aws.partner/genesys.com/cloud/o1/va";
        let disable = call(
            "DisableRule",
            serde_json::json!({"Name": "s-org-o1", "EventBusName": bus}),
        );
        assert_eq!(
            disable.checks(&|_| None)[0].resource,
            format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/{bus}/s-org-o1")
        );
        let default = call("DisableRule", serde_json::json!({"Name": "r"}));
        assert_eq!(
            default.checks(&|_| None)[0].resource,
            format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/r")
        );
        let list = call("ListRules", serde_json::json!({"EventBusName": bus}));
        assert_eq!(list.checks(&|_| None)[0].resource, "*");
    }

    #[test]
    fn queue_urls_become_arns() {
        assert_eq!(
            queue_arn("http://127.0.0.1:5000/123456789012/s-events"),
            "arn:aws:sqs:us-east-1:123456789012:s-events"
        );
    }
}
