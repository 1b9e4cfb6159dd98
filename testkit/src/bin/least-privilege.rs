//! The least-privilege check (issue 22): for each statement of each role of
//! `infra/template.yaml`, and each action of it, remove it and run the
//! permission scenarios (`testkit::permissions`) in every shape where the
//! statement exists. A removal is caught when the role meets `AccessDenied`;
//! one that fails nothing is excess privilege, unless it is on the list of
//! privileges kept with a reason (`KEPT`). Prints a Markdown table; exits 1
//! on a baseline denial or an excess privilege not on the list.
//!
//! `cargo run -p testkit --bin least-privilege`

use std::collections::BTreeMap;
use std::process::ExitCode;

use futures::StreamExt;

use testkit::iam::{Role, Shape, StackBinding};
use testkit::permissions::{SHAPES, denials_of, exercise};

/// Privileges no scenario needs that stay, and why.
const KEPT: &[(&str, &str, &str, &str)] = &[
    (
        "TokenRefresherFunction",
        "TokenTableKey",
        "kms:DescribeKey",
        DYNAMODB_KEY,
    ),
    (
        "TokenRefresherFunction",
        "TokenTableKey",
        "kms:Encrypt",
        DYNAMODB_KEY,
    ),
    (
        "TokenRefresherFunction",
        "TokenTableKey",
        "kms:GenerateDataKey*",
        DYNAMODB_KEY,
    ),
    (
        "TokenRefresherFunction",
        "TenantTableKey",
        "kms:DescribeKey",
        DYNAMODB_KEY,
    ),
    (
        "ConversationEventsFunction",
        "AnalyticsTableKey",
        "kms:DescribeKey",
        DYNAMODB_KEY,
    ),
    (
        "ConversationEventsFunction",
        "AnalyticsTableKey",
        "kms:Encrypt",
        DYNAMODB_KEY,
    ),
    (
        "ConversationEventsFunction",
        "AnalyticsTableKey",
        "kms:GenerateDataKey*",
        DYNAMODB_KEY,
    ),
    (
        "EnrichmentSweeperFunction",
        "AnalyticsTableKey",
        "kms:DescribeKey",
        DYNAMODB_KEY,
    ),
    (
        "EnrichmentSweeperFunction",
        "AnalyticsTableKey",
        "kms:Encrypt",
        DYNAMODB_KEY,
    ),
    (
        "EnrichmentSweeperFunction",
        "AnalyticsTableKey",
        "kms:GenerateDataKey*",
        DYNAMODB_KEY,
    ),
    (
        "EnrichmentSweeperFunction",
        "TokenTableKey",
        "kms:DescribeKey",
        DYNAMODB_KEY,
    ),
    (
        "EnrichmentSweeperFunction",
        "TokenTableKey",
        "kms:Encrypt",
        DYNAMODB_KEY,
    ),
    (
        "EnrichmentSweeperFunction",
        "TokenTableKey",
        "kms:GenerateDataKey*",
        DYNAMODB_KEY,
    ),
    (
        "DashboardApiFunction",
        "AnalyticsTableKey",
        "kms:DescribeKey",
        DYNAMODB_KEY,
    ),
    (
        "DashboardApiFunction",
        "TokenTableKeyForHealthReads",
        "kms:DescribeKey",
        DYNAMODB_KEY,
    ),
    (
        "DashboardOrgReaderRole",
        "AnalyticsTableKey",
        "kms:DescribeKey",
        DYNAMODB_KEY,
    ),
];

const DYNAMODB_KEY: &str = "DynamoDB's own key policy for its AWS managed key grants this to every caller through DynamoDB (KMS Developer Guide, \"How Amazon DynamoDB uses AWS KMS\"); the double asks for kms:Decrypt per request only";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let started = std::time::Instant::now();
    // The baseline: every path of every shape, no denial.
    for shape in SHAPES {
        match exercise(shape, &|_| {}, Role::Operator).await {
            Ok(res) if res.denials().is_empty() => {}
            Ok(res) => {
                eprintln!("baseline {shape:?} met denials:");
                for d in res.denials() {
                    eprintln!("  {}", d.message);
                }
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("baseline {shape:?}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    // Each role's statements and actions, with the shapes they exist in.
    let mut removals: BTreeMap<(Role, String, String), Vec<Shape>> = BTreeMap::new();
    for shape in SHAPES {
        let Ok(res) = exercise_names(shape) else {
            continue;
        };
        for role in Role::ALL {
            let Some(entry) = res.role(role) else {
                continue;
            };
            for p in &entry.policies {
                for sid in p.sids() {
                    for action in p.actions_of(&sid) {
                        removals
                            .entry((role, sid.clone(), action))
                            .or_default()
                            .push(shape);
                    }
                }
            }
        }
    }
    // Removals three at a time (each on its own deployment), in order.
    let results: Vec<Option<String>> = futures::stream::iter(removals.iter())
        .map(|((role, sid, action), shapes)| caught_by(*role, sid, action, shapes))
        .buffered(3)
        .collect()
        .await;
    println!("| Role | Statement | Action | Caught by |");
    println!("|---|---|---|---|");
    let (mut caught, mut excess, mut kept) = (0, Vec::new(), 0);
    for (((role, sid, action), _), by) in removals.iter().zip(results) {
        let why = KEPT
            .iter()
            .find(|(r, s, a, _)| *r == role.logical_id() && *s == sid && *a == action)
            .map(|k| k.3);
        let cell = match (by, why) {
            (Some(b), _) => {
                caught += 1;
                b
            }
            (None, Some(w)) => {
                kept += 1;
                format!("kept: {w}")
            }
            (None, None) => {
                excess.push(format!("{} {sid} {action}", role.logical_id()));
                "**nothing: excess**".into()
            }
        };
        println!("| {} | {sid} | {action} | {cell} |", role.logical_id());
    }
    println!();
    println!(
        "{} removals: {caught} caught, {kept} kept with a reason, {} excess; {:.0} s",
        removals.len(),
        excess.len(),
        started.elapsed().as_secs_f64()
    );
    if excess.is_empty() {
        ExitCode::SUCCESS
    } else {
        for e in &excess {
            eprintln!("excess privilege: {e}");
        }
        ExitCode::FAILURE
    }
}

/// The first shape in which removing `action` of `sid` from `role` makes
/// the role meet a denial, and the call refused.
async fn caught_by(role: Role, sid: &str, action: &str, shapes: &[Shape]) -> Option<String> {
    for shape in shapes {
        let tweak = |stack: &StackBinding| {
            if let Some(entry) = stack.role(role) {
                let policies = entry
                    .policies
                    .iter()
                    .map(|p| p.without(sid, Some(action)))
                    .collect();
                stack.set_policies(role, policies);
            }
        };
        match exercise(*shape, &tweak, role).await {
            Ok(res) => {
                if let Some(d) = denials_of(&res, role).first() {
                    return Some(format!(
                        "{:?}/{:?}: {}",
                        shape.tenancy,
                        shape.delivery,
                        short(&d.message)
                    ));
                }
            }
            Err(e) => eprintln!("{role:?} {sid} {action} {shape:?}: {e}"),
        }
    }
    None
}

/// The stack's roles for `shape`, resolved without resources.
fn exercise_names(shape: Shape) -> Result<std::sync::Arc<StackBinding>, String> {
    let res = testkit::iam::stack::Resources {
        stack_name: "least-privilege".into(),
        token_table: "tokens".into(),
        analytics_table: "analytics".into(),
        tenant_table: "tenants".into(),
        secret_arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf".into(),
        dead_letter_queue_url: "http://127.0.0.1/123456789012/least-privilege-dead-letters".into(),
        event_queue_url: "http://127.0.0.1/123456789012/least-privilege-events".into(),
    };
    StackBinding::new(&res, shape).map_err(|e| e.to_string())
}

/// The action and resource of a denial's message.
fn short(message: &str) -> String {
    message
        .split("perform: ")
        .nth(1)
        .and_then(|r| r.split(" because").next())
        .unwrap_or(message)
        .replace("on resource: ", "on ")
        .split(" on ")
        .next()
        .unwrap_or_default()
        .to_string()
}
