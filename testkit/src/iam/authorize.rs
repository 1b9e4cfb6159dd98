//! Who signs each request, and whether AWS would let them make it.
//!
//! Evaluation follows the IAM User Guide's "Policy evaluation logic": an
//! explicit Deny in any policy wins; within one account an Allow in the
//! identity policy or in the resource policy suffices (SQS queue
//! policies). KMS differs: a key policy must allow the principal itself, or
//! allow the account and so delegate to an IAM policy that also allows
//! (KMS Developer Guide, "Key policies": "To use an IAM policy to allow
//! access to a KMS key, the key policy must explicitly allow it"). Role
//! assumption needs the caller's permission and the role's trust policy.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, RwLock};

use super::policy::{Context, Outcome, Policy, Principal, Request};
use super::request::{ACCOUNT, Call, Check, REGION, Service};
use super::stack::{Denial, Role, StackBinding};

/// The access key of the harness's administrator: test set-up (creating
/// tables, queues, secrets, users) and assertions, never a function.
pub const ADMINISTRATOR_KEY: &str = "testing";

/// Who signs with an access key.
#[derive(Debug, Clone)]
pub enum Who {
    /// A session of one of the stack's roles.
    Role {
        role: Role,
        session: String,
        tags: BTreeMap<String, String>,
    },
    /// An AWS service acting for a resource of the stack (EventBridge
    /// delivering a rule's events), with the resource as `aws:SourceArn`.
    Service { name: String, source_arn: String },
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub stack: Arc<StackBinding>,
    pub who: Who,
}

impl Caller {
    fn principal(&self) -> Principal {
        match &self.who {
            Who::Role {
                role,
                session,
                tags,
            } => self.stack.principal(*role, session, tags.clone()),
            Who::Service { name, .. } => Principal::Service(name.clone()),
        }
    }

    fn name(&self) -> String {
        match self.principal() {
            Principal::Role { session_arn, .. } => session_arn,
            Principal::Service(s) => s,
        }
    }

    fn identity(&self) -> Vec<Policy> {
        match &self.who {
            Who::Role { role, .. } => self
                .stack
                .role(*role)
                .map(|r| r.policies)
                .unwrap_or_default(),
            Who::Service { .. } => Vec::new(),
        }
    }

    /// `aws:SourceArn` and `aws:SourceAccount`: present only when a service
    /// acts for a resource (IAM "AWS global condition context keys").
    fn source(&self, ctx: &mut Context) {
        if let Who::Service { source_arn, .. } = &self.who {
            ctx.set("aws:SourceArn", source_arn.clone());
            ctx.set("aws:SourceAccount", ACCOUNT);
        }
    }
}

fn callers() -> &'static RwLock<HashMap<String, Arc<Caller>>> {
    static CALLERS: OnceLock<RwLock<HashMap<String, Arc<Caller>>>> = OnceLock::new();
    CALLERS.get_or_init(RwLock::default)
}

/// A new access key that signs as `caller`.
pub fn register(caller: Caller) -> String {
    let key = format!(
        "ASIAVA{}",
        &uuid::Uuid::new_v4().simple().to_string()[..14].to_uppercase()
    );
    register_key(key.clone(), caller);
    key
}

pub(crate) fn register_key(key: String, caller: Caller) {
    callers()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, Arc::new(caller));
}

pub fn caller(key: &str) -> Option<Arc<Caller>> {
    callers()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(key)
        .cloned()
}

/// Why a call was refused, as the service answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller's policies (or the resource's) do not allow the action.
    AccessDenied(String),
    /// The service could not use the KMS key for the caller.
    KmsAccessDenied(String),
    /// The access key is nobody's.
    UnknownKey,
    /// No signature on a request that needs one.
    Unsigned,
    /// The double cannot evaluate a policy (an unsupported operator, key or
    /// variable): it refuses rather than guess.
    Unsupported(String),
}

/// What a successful call leaves behind: a session to register.
#[derive(Debug, Clone)]
pub enum After {
    Nothing,
    /// An AssumeRole: the credentials moto returns sign as this caller.
    Session(Caller),
}

/// Decides `call`; `secret_arn` resolves secret names to ARNs.
pub fn authorize(
    call: &Call,
    secret_arn: &dyn Fn(&str) -> Option<String>,
) -> Result<After, Refusal> {
    let Some(key) = call.access_key.as_deref() else {
        return match call.service {
            // The dashboard's sign-in calls Cognito's public operations.
            Service::Cognito | Service::Other => Ok(After::Nothing),
            _ => Err(Refusal::Unsigned),
        };
    };
    if key == ADMINISTRATOR_KEY {
        return Ok(After::Nothing);
    }
    let Some(caller) = caller(key) else {
        return Err(Refusal::UnknownKey);
    };
    let result = decide(&caller, call, secret_arn);
    if let Err(Refusal::AccessDenied(m) | Refusal::KmsAccessDenied(m) | Refusal::Unsupported(m)) =
        &result
    {
        caller.stack.record(Denial {
            caller: caller.name(),
            action: call.operation.clone(),
            message: m.clone(),
        });
    }
    result
}

fn decide(
    caller: &Caller,
    call: &Call,
    secret_arn: &dyn Fn(&str) -> Option<String>,
) -> Result<After, Refusal> {
    if matches!(call.service, Service::Cognito | Service::Other) {
        return Err(Refusal::AccessDenied(format!(
            "{} may not call {}: the double authorizes no such call",
            caller.name(),
            call.operation
        )));
    }
    let mut after = After::Nothing;
    for mut check in call.checks(secret_arn) {
        caller.source(&mut check.context);
        // The trust policy alone decides a role switch when the assumption
        // that both sides must allow is switched off.
        let trust_alone = check.action.starts_with("sts:")
            && !super::assumptions::assumptions().assume_role_needs_both;
        if !trust_alone {
            allow(caller, call.service, &check)?;
        }
        if check.action == "sts:AssumeRole" {
            after = assumed(caller, call, &check)?;
        }
        for kms in implied_kms(caller, call.service, &check) {
            allow_key(caller, &kms).map_err(|e| match (call.service, e) {
                (Service::Sqs, Refusal::AccessDenied(m)) => Refusal::KmsAccessDenied(m),
                (_, e) => e,
            })?;
        }
    }
    Ok(after)
}

fn request(caller: &Caller, check: &Check) -> Request {
    Request {
        principal: caller.principal(),
        action: check.action.clone(),
        resource: check.resource.clone(),
        context: check.context.clone(),
    }
}

fn evaluate(policies: &[Policy], req: &Request, resource_policy: bool) -> Result<Outcome, Refusal> {
    let mut all = Outcome::default();
    for p in policies {
        let o = p
            .evaluate(req, resource_policy)
            .map_err(|e| Refusal::Unsupported(e.to_string()))?;
        all.explicit_deny |= o.explicit_deny;
        all.allows_principal |= o.allows_principal;
        all.allows_account |= o.allows_account;
    }
    Ok(all)
}

fn message(caller: &Caller, check: &Check, why: &str) -> String {
    let action = match check.action.split_once(':') {
        // SQS names the action in lower case ("sqs:sendmessage").
        Some(("sqs", _)) => check.action.to_lowercase(),
        _ => check.action.clone(),
    };
    format!(
        "User: {} is not authorized to perform: {action} on resource: {} {why}",
        caller.name(),
        check.resource
    )
}

/// The reason AWS's message gives ("Troubleshoot access denied error messages").
fn why_not(resource_based: bool, action: &str, deny: bool) -> String {
    match (deny, resource_based) {
        (true, true) => "with an explicit deny in a resource-based policy".into(),
        (true, false) => "with an explicit deny in an identity-based policy".into(),
        (false, true) => format!("because no resource-based policy allows the {action} action"),
        (false, false) => format!("because no identity-based policy allows the {action} action"),
    }
}

/// The action itself: identity policies, and the resource's policy.
fn allow(caller: &Caller, service: Service, check: &Check) -> Result<(), Refusal> {
    let req = request(caller, check);
    let identity = evaluate(&caller.identity(), &req, false)?;
    let resource_policy: Vec<Policy> = match service {
        Service::Sqs => caller
            .stack
            .queue_policies
            .get(&check.resource)
            .cloned()
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    let resource = evaluate(&resource_policy, &req, true)?;
    let deny = identity.explicit_deny || resource.explicit_deny;
    let allowed = identity.allows_principal || resource.allows_principal;
    if deny || !allowed {
        let resource_based = resource.explicit_deny || matches!(caller.who, Who::Service { .. });
        let why = why_not(resource_based, &check.action, deny);
        return Err(Refusal::AccessDenied(message(caller, check, &why)));
    }
    Ok(())
}

/// An AssumeRole also needs the role's trust policy to allow the caller
/// ("Granting a user permissions to switch roles": both sides). ASSUMPTION
/// (stricter than AWS, which in one account may accept the trust policy
/// alone): both; switch `VA_IAM_ASSUME_ROLE_NEEDS_BOTH`.
fn assumed(caller: &Caller, call: &Call, check: &Check) -> Result<After, Refusal> {
    let role = caller.stack.role_by_arn(&check.resource);
    let trust = role
        .and_then(|r| caller.stack.role(r))
        .and_then(|e| e.trust);
    let req = request(caller, check);
    let mut outcome = Outcome::default();
    if let Some(t) = &trust {
        outcome = evaluate(std::slice::from_ref(t), &req, true)?;
        // Session tags are allowed by the trust policy too.
        if !super::request::session_tags(call).is_empty() {
            let tag = Check {
                action: "sts:TagSession".into(),
                ..check.clone()
            };
            let o = evaluate(std::slice::from_ref(t), &request(caller, &tag), true)?;
            outcome.allows_principal &= o.allows_principal;
            outcome.explicit_deny |= o.explicit_deny;
        }
    }
    match role {
        Some(r) if outcome.allows_principal && !outcome.explicit_deny => {
            Ok(After::Session(Caller {
                stack: caller.stack.clone(),
                who: Who::Role {
                    role: r,
                    session: call
                        .body
                        .get("RoleSessionName")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("session")
                        .to_string(),
                    tags: super::request::session_tags(call),
                },
            }))
        }
        _ => Err(Refusal::AccessDenied(message(
            caller,
            check,
            &why_not(true, &check.action, outcome.explicit_deny),
        ))),
    }
}

/// The KMS calls a service makes for the caller when the resource is under
/// a customer managed key:
/// - DynamoDB decrypts the table key for each caller ("How Amazon DynamoDB
///   uses AWS KMS": it caches the plaintext table key per caller for at most
///   five minutes of inactivity, so every caller needs kms:Decrypt);
/// - SQS: a producer needs kms:GenerateDataKey and kms:Decrypt, a consumer
///   kms:Decrypt (SQS Developer Guide, "Key management"), with the queue's
///   ARN as the encryption context `aws:sqs:arn`;
/// - Secrets Manager decrypts a secret under a customer managed key with
///   the caller's permission and the context `SecretARN` (Secrets Manager
///   User Guide, "Secret encryption and decryption").
///
/// The double asks on every call; AWS's caches make it ask less often,
/// never more, so it is at least as strict.
fn implied_kms(caller: &Caller, service: Service, check: &Check) -> Vec<Check> {
    let stack = &caller.stack;
    let kms = |action: &str, key: &str, via: &str, ctx: &[(&str, String)]| {
        let mut c = Check {
            action: action.into(),
            resource: key.to_string(),
            context: Context::new(),
        };
        c.context
            .set("kms:ViaService", format!("{via}.{REGION}.amazonaws.com"));
        c.context.set("kms:CallerAccount", ACCOUNT);
        for (k, v) in ctx {
            c.context
                .set(&format!("kms:EncryptionContext:{k}"), v.clone());
        }
        // ASSUMPTION (switch `VA_IAM_KMS_SEES_SOURCE_ARN`): KMS sees the
        // service's source when SQS calls it for a service's message.
        if super::assumptions::assumptions().kms_sees_source_arn {
            caller.source(&mut c.context);
        }
        c
    };
    match service {
        Service::DynamoDb => {
            let table = check
                .resource
                .split(":table/")
                .nth(1)
                .and_then(|t| t.split('/').next())
                .unwrap_or_default();
            match stack.table_keys.get(table) {
                Some(key) => vec![kms(
                    "kms:Decrypt",
                    key,
                    "dynamodb",
                    &[
                        ("aws:dynamodb:tableName", table.to_string()),
                        ("aws:dynamodb:subscriberId", ACCOUNT.to_string()),
                    ],
                )],
                None => Vec::new(),
            }
        }
        Service::Sqs => {
            let Some(key) = stack.queue_keys.get(&check.resource) else {
                return Vec::new();
            };
            let ctx = [("aws:sqs:arn", check.resource.clone())];
            match check.action.as_str() {
                "sqs:SendMessage" | "sqs:SendMessageBatch" => vec![
                    kms("kms:GenerateDataKey", key, "sqs", &ctx),
                    kms("kms:Decrypt", key, "sqs", &ctx),
                ],
                "sqs:ReceiveMessage" => vec![kms("kms:Decrypt", key, "sqs", &ctx)],
                _ => Vec::new(),
            }
        }
        Service::SecretsManager => {
            // Reading decrypts; storing a value generates a data key.
            let action = match check.action.as_str() {
                "secretsmanager:GetSecretValue" => "kms:Decrypt",
                "secretsmanager:CreateSecret" | "secretsmanager:PutSecretValue" => {
                    "kms:GenerateDataKey"
                }
                _ => return Vec::new(),
            };
            match &stack.secret_key {
                Some(key) => vec![kms(
                    action,
                    key,
                    "secretsmanager",
                    &[("SecretARN", check.resource.clone())],
                )],
                None => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// A KMS action: the key policy must allow the principal, or allow the
/// account and an identity policy the action.
fn allow_key(caller: &Caller, check: &Check) -> Result<(), Refusal> {
    let req = request(caller, check);
    let key_policy: Vec<Policy> = caller
        .stack
        .keys
        .get(&check.resource)
        .cloned()
        .into_iter()
        .collect();
    let key = evaluate(&key_policy, &req, true)?;
    let identity = evaluate(&caller.identity(), &req, false)?;
    if key.explicit_deny || identity.explicit_deny {
        return Err(Refusal::AccessDenied(message(
            caller,
            check,
            &why_not(key.explicit_deny, &check.action, true),
        )));
    }
    if key.allows_principal || (key.allows_account && identity.allows_principal) {
        return Ok(());
    }
    let why = why_not(!key.allows_account, &check.action, false);
    Err(Refusal::AccessDenied(message(caller, check, &why)))
}
