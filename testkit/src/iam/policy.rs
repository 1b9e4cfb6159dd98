//! IAM policy documents and their evaluation against one request: the pure
//! core of the enforcing double (no I/O).
//!
//! It evaluates identity policies, KMS key policies, SQS queue policies and
//! role trust policies the way AWS does, and it is at least as strict as AWS:
//! anything it does not understand (an unknown condition operator, condition
//! key, policy variable or policy element) is a [`PolicyError`], never an
//! allow.
//!
//! Sources (AWS documentation; each rule below cites the page it follows):
//! - IAM User Guide, "Policy evaluation logic":
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>
//! - "IAM JSON policy elements: Condition operators":
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html>
//! - "Conditions with multiple context keys or values":
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html>
//! - "Single-valued vs. multivalued context keys":
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html>
//! - "IAM policy elements: Variables and tags":
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html>
//! - "IAM JSON policy elements: Action / NotAction / Resource / NotResource /
//!   Principal / Version":
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html>
//! - "AWS global condition context keys":
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html>
//! - KMS Developer Guide, "Key policies in AWS KMS":
//!   <https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html>
//!   and "AWS KMS condition keys" (`kms:EncryptionContext:context-key`,
//!   `kms:ViaService`, `kms:CallerAccount`):
//!   <https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html>
//! - DynamoDB Developer Guide, "Using IAM policy conditions for fine-grained
//!   access control":
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html>

use std::collections::BTreeMap;

use serde_json::Value;

/// Who makes a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A session of an IAM role (a Lambda function's execution role, or an assumed role).
    Role {
        /// The role's account, e.g. "123456789012".
        account: String,
        /// "arn:aws:iam::123456789012:role/path/name".
        role_arn: String,
        /// "arn:aws:sts::123456789012:assumed-role/name/session".
        session_arn: String,
        /// Session tags: the values of `aws:PrincipalTag/<key>` (key names
        /// case-insensitive, values case-sensitive).
        tags: BTreeMap<String, String>,
    },
    /// An AWS service principal such as "events.amazonaws.com".
    Service(String),
}

/// A request as IAM evaluates it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Who calls.
    pub principal: Principal,
    /// "service:Action", e.g. "dynamodb:UpdateItem" (compared case-insensitively).
    pub action: String,
    /// The resource ARN.
    pub resource: String,
    /// The request's condition keys.
    pub context: Context,
}

/// Condition keys and their values for one request. Key names are
/// case-insensitive (stored lowercased). A key absent from the map is "not
/// present in the request context"; a key set to an empty list is treated as
/// absent too.
///
/// `aws:PrincipalTag/<k>`, `aws:PrincipalArn` and `aws:PrincipalAccount` are
/// not read from here: they are computed from the request's [`Principal`].
#[derive(Debug, Clone, Default)]
pub struct Context {
    keys: BTreeMap<String, Vec<String>>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a single-valued key.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.keys.insert(key.to_lowercase(), vec![value.into()]);
        self
    }

    /// Sets a multivalued key (e.g. dynamodb:LeadingKeys, dynamodb:Attributes, aws:TagKeys).
    pub fn set_all(&mut self, key: &str, values: Vec<String>) -> &mut Self {
        self.keys.insert(key.to_lowercase(), values);
        self
    }

    /// The values of `key` (case-insensitive), if it was set.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.keys.get(&key.to_lowercase()).map(Vec::as_slice)
    }
}

/// A statement's `Effect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// "Allow".
    Allow,
    /// "Deny".
    Deny,
}

/// One policy's answer for one request.
///
/// Combining the answers of several policies is the caller's job ("Policy
/// evaluation logic": an explicit deny in any policy overrides any allow; with
/// no allow the request is implicitly denied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// A Deny statement matched.
    pub explicit_deny: bool,
    /// An Allow statement matched whose Principal names this principal itself
    /// (role ARN, session ARN, the service, or "*"); for identity policies (no Principal element) any matching Allow.
    pub allows_principal: bool,
    /// An Allow statement matched whose Principal is only the principal's account
    /// ("arn:aws:iam::<acct>:root" or "<acct>"): in a key policy this delegates to IAM policies.
    pub allows_account: bool,
}

/// Why a policy could not be parsed or evaluated. Never silently an allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The document does not have the shape of a policy, or uses an element
    /// this double does not support.
    #[error("policy document: {0}")]
    Malformed(String),
    /// A condition operator this double does not implement.
    #[error("unsupported condition operator {0}")]
    UnsupportedOperator(String),
    /// A condition key this double does not know.
    #[error("unsupported condition key {0}")]
    UnsupportedKey(String),
    /// A `${...}` policy variable this double does not resolve.
    #[error("unsupported policy variable {0}")]
    UnsupportedVariable(String),
    /// A multivalued key used without a set operator.
    #[error("condition key {key} is multivalued; {operator} needs ForAllValues: or ForAnyValue:")]
    MultivaluedWithoutSet {
        /// The condition key as written.
        key: String,
        /// The condition operator as written.
        operator: String,
    },
}

/// A parsed policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// One statement of a policy.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The `Sid`, or "#<index>" (the statement's position in the document).
    sid: String,
    effect: Effect,
    /// `None`: no Principal element (an identity policy statement).
    principal: Option<Vec<PrincipalSpec>>,
    actions: Actions,
    /// `None`: no Resource element (a role trust policy statement: the
    /// resource is the role the policy is attached to).
    resources: Option<Resources>,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
enum Actions {
    /// Entries as written.
    Action(Vec<String>),
    NotAction(Vec<String>),
}

#[derive(Debug, Clone)]
enum Resources {
    Resource(Vec<Pattern>),
    NotResource(Vec<Pattern>),
}

/// One entry of a Principal element.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PrincipalSpec {
    /// `"*"` or `{"AWS": "*"}`.
    Anyone,
    /// `{"AWS": "arn:aws:iam::<acct>:root"}` or `{"AWS": "<acct>"}`.
    Account(String),
    /// `{"AWS": "<role or session ARN>"}`.
    Arn(String),
    /// `{"Service": "<service>.amazonaws.com"}` (lowercased).
    Service(String),
}

/// One policy value (Resource entry or condition value), tokenized.
#[derive(Debug, Clone)]
struct Pattern {
    toks: Vec<Tok>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A literal character (including those written `${*}`, `${?}`, `${$}`).
    Lit(char),
    /// `*`: any run of characters (a literal `*` for the Equals operators).
    Star,
    /// `?`: one character (a literal `?` for the Equals operators).
    Quest,
    /// `${aws:PrincipalTag/<key>}` (key lowercased).
    PrincipalTag(String),
}

/// A pattern after substitution of its variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Glob {
    Lit(char),
    Star,
    Quest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    None,
    ForAllValues,
    ForAnyValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Bool,
    Null,
}

impl Base {
    fn from_name(name: &str) -> Option<Base> {
        Some(match name {
            "StringEquals" => Base::StringEquals,
            "StringNotEquals" => Base::StringNotEquals,
            "StringEqualsIgnoreCase" => Base::StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => Base::StringNotEqualsIgnoreCase,
            "StringLike" => Base::StringLike,
            "StringNotLike" => Base::StringNotLike,
            "ArnEquals" => Base::ArnEquals,
            "ArnLike" => Base::ArnLike,
            "ArnNotEquals" => Base::ArnNotEquals,
            "ArnNotLike" => Base::ArnNotLike,
            "Bool" => Base::Bool,
            "Null" => Base::Null,
            _ => return None,
        })
    }

    /// The negated matching operators ("Condition operators": "If the policy
    /// condition requires that the key is *not* matched, such as StringNotLike
    /// or ArnNotLike, and the right key is not present, the condition is
    /// true"; "Conditions with multiple context keys or values": the values of
    /// a negated operator are evaluated with a logical NOR).
    fn negated(self) -> bool {
        matches!(
            self,
            Base::StringNotEquals
                | Base::StringNotEqualsIgnoreCase
                | Base::StringNotLike
                | Base::ArnNotEquals
                | Base::ArnNotLike
        )
    }

    fn is_arn(self) -> bool {
        matches!(
            self,
            Base::ArnEquals | Base::ArnLike | Base::ArnNotEquals | Base::ArnNotLike
        )
    }
}

#[derive(Debug, Clone)]
struct Operator {
    written: String,
    set: SetOp,
    base: Base,
    if_exists: bool,
}

#[derive(Debug, Clone)]
struct Condition {
    op: Operator,
    /// The key as written (for messages).
    key_written: String,
    /// The key lowercased ("condition key names are not case-sensitive",
    /// IAM JSON policy elements: Condition).
    key: String,
    values: Vec<Pattern>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Single,
    Multi,
}

/// The version that introduced policy variables ("IAM JSON policy elements:
/// Version": policy variables need `"Version": "2012-10-17"`; with an older or
/// absent Version a `${...}` is literal text).
const VERSION_2012: &str = "2012-10-17";
const VERSION_2008: &str = "2008-10-17";

impl Policy {
    /// Parses a policy document (serde_json::Value with "Statement": object or array). "Version" optional.
    ///
    /// Everything static is checked here: element names, operators, condition
    /// keys, policy variables, multivalued keys without a set operator.
    pub fn parse(doc: &Value) -> Result<Policy, PolicyError> {
        let obj = doc
            .as_object()
            .ok_or_else(|| malformed("the document is not a JSON object"))?;
        for key in obj.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(malformed(format!("unknown top-level element {key}")));
            }
        }
        // "IAM JSON policy elements: Version": only these two versions exist;
        // policy variables work only with 2012-10-17. Stricter than AWS: a
        // `${` in a policy without that version is an error here, where AWS
        // would compare it as literal text.
        let variables = match obj.get("Version") {
            None => false,
            Some(Value::String(v)) if v == VERSION_2012 => true,
            Some(Value::String(v)) if v == VERSION_2008 => false,
            Some(other) => return Err(malformed(format!("unknown Version {other}"))),
        };
        let statements = match obj.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
            Some(item @ Value::Object(_)) => vec![item],
            Some(_) => return Err(malformed("Statement is neither an object nor an array")),
            None => return Err(malformed("no Statement element")),
        };
        let mut parsed: Vec<Statement> = Vec::with_capacity(statements.len());
        for (index, item) in statements.into_iter().enumerate() {
            let statement = Statement::parse(item, index, variables)?;
            if parsed.iter().any(|s| s.sid == statement.sid) {
                return Err(malformed(format!("duplicate Sid {}", statement.sid)));
            }
            parsed.push(statement);
        }
        Ok(Policy { statements: parsed })
    }

    /// Evaluates every statement. `resource_policy` = true means statements must have Principal (or NotPrincipal → error unsupported) and it is matched; false means identity policy: a Principal element is Malformed.
    pub fn evaluate(
        &self,
        request: &Request,
        resource_policy: bool,
    ) -> Result<Outcome, PolicyError> {
        let mut outcome = Outcome::default();
        for statement in &self.statements {
            let Some(matched) = statement.applies(request, resource_policy)? else {
                continue;
            };
            match statement.effect {
                // "Policy evaluation logic": an explicit deny in any policy
                // overrides any allow. A Deny naming an account applies to
                // every principal of that account.
                Effect::Deny => outcome.explicit_deny = true,
                Effect::Allow => {
                    outcome.allows_principal |= matched.itself;
                    outcome.allows_account |= matched.account;
                }
            }
        }
        Ok(outcome)
    }

    /// Statement ids in order (a statement without Sid gets "#<index>").
    pub fn sids(&self) -> Vec<String> {
        self.statements.iter().map(|s| s.sid.clone()).collect()
    }

    /// The statement's actions as written (for least-privilege checks).
    /// Empty for an unknown sid and for a `NotAction` statement.
    pub fn actions_of(&self, sid: &str) -> Vec<String> {
        match self.statements.iter().find(|s| s.sid == sid) {
            Some(Statement {
                actions: Actions::Action(actions),
                ..
            }) => actions.clone(),
            _ => Vec::new(),
        }
    }

    /// A copy without the statement `sid` (action None) or without one action of it (the statement removed if it had only that action).
    ///
    /// The action is compared case-insensitively (actions are). Unnamed
    /// statements keep their "#<index>" names. An unknown sid or action, or
    /// an action of a `NotAction` statement, leaves the copy unchanged.
    pub fn without(&self, sid: &str, action: Option<&str>) -> Policy {
        let mut statements = Vec::with_capacity(self.statements.len());
        for statement in &self.statements {
            if statement.sid != sid {
                statements.push(statement.clone());
                continue;
            }
            let Some(action) = action else { continue };
            let mut statement = statement.clone();
            if let Actions::Action(actions) = &mut statement.actions {
                actions.retain(|a| !a.eq_ignore_ascii_case(action));
                if actions.is_empty() {
                    continue;
                }
            }
            statements.push(statement);
        }
        Policy { statements }
    }
}

/// How a statement's Principal element matched the request's principal.
#[derive(Debug, Clone, Copy, Default)]
struct PrincipalMatch {
    /// Names the principal itself (or anyone); always true for identity policies.
    itself: bool,
    /// Names the principal's account only.
    account: bool,
}

impl Statement {
    fn parse(item: &Value, index: usize, variables: bool) -> Result<Statement, PolicyError> {
        let obj = item
            .as_object()
            .ok_or_else(|| malformed(format!("statement #{index} is not an object")))?;
        // "IAM JSON policy element reference": a statement consists of these
        // elements; anything else is not understood, hence an error.
        for key in obj.keys() {
            match key.as_str() {
                "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource"
                | "Principal" | "Condition" => {}
                "NotPrincipal" => return Err(malformed("NotPrincipal unsupported")),
                other => {
                    return Err(malformed(format!(
                        "unknown element {other} in statement #{index}"
                    )));
                }
            }
        }
        let sid = match obj.get("Sid") {
            None => format!("#{index}"),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(malformed(format!(
                    "Sid of statement #{index} is not a string"
                )));
            }
        };
        let effect = match obj.get("Effect") {
            Some(Value::String(e)) if e == "Allow" => Effect::Allow,
            Some(Value::String(e)) if e == "Deny" => Effect::Deny,
            Some(other) => return Err(malformed(format!("statement {sid}: Effect {other}"))),
            None => return Err(malformed(format!("statement {sid} has no Effect"))),
        };
        // "IAM JSON policy elements: Action / NotAction": exactly one of them.
        let actions = match (obj.get("Action"), obj.get("NotAction")) {
            (Some(a), None) => Actions::Action(parse_actions(a, &sid)?),
            (None, Some(a)) => Actions::NotAction(parse_actions(a, &sid)?),
            _ => {
                return Err(malformed(format!(
                    "statement {sid} needs exactly one of Action and NotAction"
                )));
            }
        };
        // "IAM JSON policy elements: Resource / NotResource": at most one (a
        // role trust policy has neither; an identity policy must have one,
        // checked in `applies`).
        let resources = match (obj.get("Resource"), obj.get("NotResource")) {
            (Some(r), None) => Some(Resources::Resource(parse_resources(r, &sid, variables)?)),
            (None, Some(r)) => Some(Resources::NotResource(parse_resources(r, &sid, variables)?)),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(malformed(format!(
                    "statement {sid} has both Resource and NotResource"
                )));
            }
        };
        let principal = obj
            .get("Principal")
            .map(|p| parse_principal(p, &sid))
            .transpose()?;
        let conditions = match obj.get("Condition") {
            None => Vec::new(),
            Some(c) => parse_conditions(c, &sid, variables)?,
        };
        Ok(Statement {
            sid,
            effect,
            principal,
            actions,
            resources,
            conditions,
        })
    }

    /// `Some` when the statement applies to the request: action, resource,
    /// principal (resource policies) and every condition match ("Policy
    /// evaluation logic").
    fn applies(
        &self,
        request: &Request,
        resource_policy: bool,
    ) -> Result<Option<PrincipalMatch>, PolicyError> {
        let sid = &self.sid;
        match (&self.principal, resource_policy) {
            (Some(_), false) => {
                // "IAM JSON policy elements: Principal": "You cannot use the
                // Principal element in an identity-based policy".
                return Err(malformed(format!(
                    "statement {sid}: Principal in an identity policy"
                )));
            }
            (None, true) => {
                return Err(malformed(format!(
                    "statement {sid}: a resource policy statement needs a Principal"
                )));
            }
            _ => {}
        }
        if !self.action_matches(&request.action) {
            return Ok(None);
        }
        // A variable that cannot be resolved: "If AWS cannot resolve a
        // variable this might cause the entire statement to be invalid"
        // ("IAM policy elements: Variables and tags"). Such a value matches
        // nothing, and an Allow statement that met one never applies (so a
        // negated operator cannot turn the miss into an allow); a Deny
        // statement keeps the "matches nothing" reading (stricter).
        let mut unresolved = false;
        let resource_ok = match &self.resources {
            Some(Resources::Resource(patterns)) => any_resource(patterns, request, &mut unresolved),
            Some(Resources::NotResource(patterns)) => {
                !any_resource(patterns, request, &mut unresolved)
            }
            None if resource_policy => true,
            None => {
                return Err(malformed(format!(
                    "statement {sid}: an identity policy statement needs Resource or NotResource"
                )));
            }
        };
        if !resource_ok {
            return Ok(None);
        }
        let matched = match &self.principal {
            None => PrincipalMatch {
                itself: true,
                account: false,
            },
            Some(specs) => {
                let m = principal_matches(specs, &request.principal);
                if !m.itself && !m.account {
                    return Ok(None);
                }
                m
            }
        };
        for condition in &self.conditions {
            if !condition.holds(request, &mut unresolved)? {
                return Ok(None);
            }
        }
        if unresolved && self.effect == Effect::Allow {
            return Ok(None);
        }
        Ok(Some(matched))
    }

    /// "IAM JSON policy elements: Action": case-insensitive, `*` and `?`
    /// wildcards. "NotAction": the statement matches every action except
    /// those listed.
    fn action_matches(&self, action: &str) -> bool {
        let action = action.to_lowercase();
        let any = |list: &[String]| {
            list.iter()
                .any(|p| glob_str(&plain_glob(&p.to_lowercase()), &action))
        };
        match &self.actions {
            Actions::Action(list) => any(list),
            Actions::NotAction(list) => !any(list),
        }
    }
}

/// "IAM JSON policy elements: Resource": case-sensitive, `*` matches any run
/// of characters (across `:` and `/`), `?` one character.
fn any_resource(patterns: &[Pattern], request: &Request, unresolved: &mut bool) -> bool {
    patterns
        .iter()
        .any(|p| match p.resolve(&request.principal) {
            Some(glob) => glob_str(&glob, &request.resource),
            None => {
                *unresolved = true;
                false
            }
        })
}

/// "IAM JSON policy elements: Principal" and KMS "Key policies": `"*"` and
/// `{"AWS": "*"}` name anyone; the account root (or the bare account id)
/// names the account, which in a key policy delegates to the account's IAM
/// policies; a role ARN names every session of that role; an assumed-role
/// session ARN names that session; a service principal names the service.
fn principal_matches(specs: &[PrincipalSpec], principal: &Principal) -> PrincipalMatch {
    let mut m = PrincipalMatch::default();
    for spec in specs {
        match (spec, principal) {
            (PrincipalSpec::Anyone, _) => m.itself = true,
            (PrincipalSpec::Account(acct), Principal::Role { account, .. }) => {
                m.account |= acct == account;
            }
            (
                PrincipalSpec::Arn(arn),
                Principal::Role {
                    role_arn,
                    session_arn,
                    ..
                },
            ) => m.itself |= arn == role_arn || arn == session_arn,
            (PrincipalSpec::Service(s), Principal::Service(service)) => {
                m.itself |= s.eq_ignore_ascii_case(service);
            }
            _ => {}
        }
    }
    m
}

fn malformed(message: impl Into<String>) -> PolicyError {
    PolicyError::Malformed(message.into())
}

/// A string or a non-empty array of strings.
fn string_list(value: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    let items = match value {
        Value::String(s) => return Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items,
        _ => {
            return Err(malformed(format!(
                "{what} is not a string or a non-empty array"
            )));
        }
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            _ => Err(malformed(format!(
                "{what} has a value that is not a string"
            ))),
        })
        .collect()
}

/// "IAM JSON policy elements: Action": `"*"` or `"service:action"` where the
/// action part may use `*` and `?`.
fn parse_actions(value: &Value, sid: &str) -> Result<Vec<String>, PolicyError> {
    let actions = string_list(value, &format!("Action of statement {sid}"))?;
    for action in &actions {
        let valid = action == "*"
            || action
                .split_once(':')
                .is_some_and(|(service, name)| !service.is_empty() && !name.is_empty());
        if !valid || action.contains("${") {
            return Err(malformed(format!("statement {sid}: action {action:?}")));
        }
    }
    Ok(actions)
}

/// "IAM JSON policy elements: Resource": `"*"` or an ARN.
fn parse_resources(value: &Value, sid: &str, variables: bool) -> Result<Vec<Pattern>, PolicyError> {
    let resources = string_list(value, &format!("Resource of statement {sid}"))?;
    resources
        .iter()
        .map(|r| {
            if r != "*" && !r.starts_with("arn:") {
                return Err(malformed(format!(
                    "statement {sid}: resource {r:?} is not an ARN"
                )));
            }
            Pattern::parse(r, variables)
        })
        .collect()
}

/// "IAM JSON policy elements: Principal": `"*"`, `{"AWS": ...}`,
/// `{"Service": ...}`. Other principal types (Federated, CanonicalUser) and
/// wildcards inside ARNs ("you cannot use a wildcard to match part of a
/// principal name or ARN") are errors.
fn parse_principal(value: &Value, sid: &str) -> Result<Vec<PrincipalSpec>, PolicyError> {
    let obj = match value {
        Value::String(s) if s == "*" => return Ok(vec![PrincipalSpec::Anyone]),
        Value::Object(obj) if !obj.is_empty() => obj,
        _ => return Err(malformed(format!("statement {sid}: Principal {value}"))),
    };
    let mut specs = Vec::new();
    for (kind, entries) in obj {
        let entries = string_list(entries, &format!("Principal {kind} of statement {sid}"))?;
        for entry in entries {
            let spec = match kind.as_str() {
                "AWS" => parse_aws_principal(&entry),
                "Service" if entry.ends_with(".amazonaws.com") && !has_wildcard(&entry) => {
                    Some(PrincipalSpec::Service(entry.to_lowercase()))
                }
                "Service" => None,
                other => {
                    return Err(malformed(format!(
                        "statement {sid}: Principal type {other} unsupported"
                    )));
                }
            };
            specs.push(spec.ok_or_else(|| {
                malformed(format!("statement {sid}: Principal {kind} {entry:?}"))
            })?);
        }
    }
    Ok(specs)
}

fn parse_aws_principal(entry: &str) -> Option<PrincipalSpec> {
    if entry == "*" {
        return Some(PrincipalSpec::Anyone);
    }
    if is_account_id(entry) {
        return Some(PrincipalSpec::Account(entry.to_owned()));
    }
    if has_wildcard(entry) {
        return None;
    }
    let parts: Vec<&str> = entry.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, "root"]
            if !partition.is_empty() && is_account_id(account) =>
        {
            Some(PrincipalSpec::Account((*account).to_owned()))
        }
        ["arn", partition, "iam" | "sts", "", account, resource]
            if !partition.is_empty() && is_account_id(account) && !resource.is_empty() =>
        {
            Some(PrincipalSpec::Arn(entry.to_owned()))
        }
        _ => None,
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn has_wildcard(s: &str) -> bool {
    s.contains('*') || s.contains('?')
}

/// "IAM JSON policy elements: Condition": `{ Operator: { Key: value | [values] } }`.
fn parse_conditions(
    value: &Value,
    sid: &str,
    variables: bool,
) -> Result<Vec<Condition>, PolicyError> {
    let block = value
        .as_object()
        .ok_or_else(|| malformed(format!("statement {sid}: Condition is not an object")))?;
    let mut conditions = Vec::new();
    for (op_name, keys) in block {
        let op = parse_operator(op_name)?;
        let keys = keys.as_object().ok_or_else(|| {
            malformed(format!(
                "statement {sid}: Condition {op_name} is not an object"
            ))
        })?;
        for (key_written, values) in keys {
            let key = key_written.to_lowercase();
            let kind =
                key_kind(&key).ok_or_else(|| PolicyError::UnsupportedKey(key_written.clone()))?;
            // "Single-valued vs. multivalued context keys": "Multivalued
            // context keys require a condition set operator." The Null check
            // tests presence only and takes none.
            if kind == KeyKind::Multi && op.set == SetOp::None && op.base != Base::Null {
                return Err(PolicyError::MultivaluedWithoutSet {
                    key: key_written.clone(),
                    operator: op_name.clone(),
                });
            }
            let values = condition_values(values, sid, op_name, key_written)?;
            let values = match op.base {
                // "Condition operators": Bool and Null take "true" or
                // "false"; Null takes no policy variables.
                Base::Bool | Base::Null => values
                    .iter()
                    .map(|v| {
                        if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
                            Ok(Pattern::literal(&v.to_lowercase()))
                        } else {
                            Err(malformed(format!(
                                "statement {sid}: {op_name} {key_written} value {v:?} is not true or false"
                            )))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                _ => values
                    .iter()
                    .map(|v| Pattern::parse(v, variables))
                    .collect::<Result<Vec<_>, _>>()?,
            };
            if op.base.is_arn() {
                // A policy ARN value has six colon-separated parts
                // ("Condition operators": ARN operators); anything else is
                // not understood here.
                for v in &values {
                    let colons = v.toks.iter().filter(|t| **t == Tok::Lit(':')).count();
                    if colons < 5 {
                        return Err(malformed(format!(
                            "statement {sid}: {op_name} {key_written} value is not an ARN"
                        )));
                    }
                }
            }
            conditions.push(Condition {
                op: op.clone(),
                key_written: key_written.clone(),
                key,
                values,
            });
        }
    }
    Ok(conditions)
}

/// "Condition operators": values may be written as JSON strings, numbers or
/// booleans; they compare as their string forms.
fn condition_values(
    value: &Value,
    sid: &str,
    op: &str,
    key: &str,
) -> Result<Vec<String>, PolicyError> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let bad = || {
        malformed(format!(
            "statement {sid}: {op} {key} has a value that is not a string, number or boolean"
        ))
    };
    match value {
        Value::Array(items) if !items.is_empty() => {
            items.iter().map(|v| scalar(v).ok_or_else(bad)).collect()
        }
        Value::Array(_) => Err(bad()),
        other => Ok(vec![scalar(other).ok_or_else(bad)?]),
    }
}

/// "Condition operators": `[ForAllValues:|ForAnyValue:]Base[IfExists]`.
/// "...IfExists" exists for every operator but Null; the set operators
/// qualify the string and ARN operators here (Bool and Null do not compare
/// sets). Operator names are matched exactly; anything else is unsupported.
fn parse_operator(written: &str) -> Result<Operator, PolicyError> {
    let unsupported = || PolicyError::UnsupportedOperator(written.to_owned());
    let (set, rest) = if let Some(rest) = written.strip_prefix("ForAllValues:") {
        (SetOp::ForAllValues, rest)
    } else if let Some(rest) = written.strip_prefix("ForAnyValue:") {
        (SetOp::ForAnyValue, rest)
    } else {
        (SetOp::None, written)
    };
    let (name, if_exists) = match rest.strip_suffix("IfExists") {
        Some(name) => (name, true),
        None => (rest, false),
    };
    let base = Base::from_name(name).ok_or_else(unsupported)?;
    if (base == Base::Null && if_exists)
        || (matches!(base, Base::Bool | Base::Null) && set != SetOp::None)
    {
        return Err(unsupported());
    }
    Ok(Operator {
        written: written.to_owned(),
        set,
        base,
        if_exists,
    })
}

/// The condition keys this double knows, with their value kind ("AWS global
/// condition context keys"; KMS "AWS KMS condition keys"; DynamoDB "Using IAM
/// policy conditions for fine-grained access control"). Anything else is an
/// error, never ignored.
fn key_kind(key: &str) -> Option<KeyKind> {
    match key {
        // ArrayOfString in the Service Authorization Reference.
        "dynamodb:leadingkeys"
        | "dynamodb:attributes"
        | "aws:tagkeys"
        | "kms:encryptioncontextkeys" => Some(KeyKind::Multi),
        "dynamodb:select"
        | "dynamodb:returnvalues"
        | "dynamodb:returnconsumedcapacity"
        | "dynamodb:enclosingoperation"
        | "kms:viaservice"
        | "kms:calleraccount"
        | "aws:sourcearn"
        | "aws:sourceaccount"
        | "aws:principalarn"
        | "aws:principalaccount" => Some(KeyKind::Single),
        _ => {
            let tail = [
                "kms:encryptioncontext:",
                "aws:principaltag/",
                "aws:requesttag/",
            ]
            .iter()
            .find_map(|prefix| key.strip_prefix(prefix))?;
            (!tail.is_empty()).then_some(KeyKind::Single)
        }
    }
}

impl Condition {
    fn holds(&self, request: &Request, unresolved: &mut bool) -> Result<bool, PolicyError> {
        let present = lookup(request, &self.key);
        let op = &self.op;
        if op.base == Base::Null {
            // "Condition operators", Null: "true" holds when the key is
            // absent, "false" when it is present (values OR'ed).
            let absent = present.is_none();
            return Ok(self
                .values
                .iter()
                .any(|v| v.render_literal() == if absent { "true" } else { "false" }));
        }
        let Some(request_values) = present else {
            return Ok(match op.set {
                // "Single-valued vs. multivalued context keys": ForAllValues
                // "also returns true if there are no context keys in the
                // request"; ForAnyValue returns false then.
                SetOp::ForAllValues => true,
                SetOp::ForAnyValue => op.if_exists,
                // "Condition operators": an absent key makes the condition
                // false, except that a negated operator is then true and
                // ...IfExists is true.
                SetOp::None => op.if_exists || op.base.negated(),
            });
        };
        // Does one request value satisfy the operator (positive: matches one
        // of the policy values, OR; negated: matches none of them, NOR)?
        let mut satisfies = |v: &str| {
            let hit = self
                .values
                .iter()
                .any(|p| match p.resolve(&request.principal) {
                    Some(glob) => base_matches(op.base, &glob, v),
                    None => {
                        *unresolved = true;
                        false
                    }
                });
            hit != op.base.negated()
        };
        Ok(match op.set {
            SetOp::None => {
                // A single-valued key holds one value; a context that gives
                // it several is a test bug, reported rather than guessed at.
                let [v] = request_values.as_slice() else {
                    return Err(PolicyError::MultivaluedWithoutSet {
                        key: self.key_written.clone(),
                        operator: op.written.clone(),
                    });
                };
                satisfies(v)
            }
            // "Single-valued vs. multivalued context keys": ForAllValues
            // holds when every request value satisfies the operator;
            // ForAnyValue when at least one does. KMS (kms:EncryptionContext:
            // context-key) says "Do not use a ForAnyValue or ForAllValues set
            // operator with this single-valued condition key"; AWS still
            // evaluates such a policy, as a set of one value, and so does
            // this double (an absent key: ForAllValues true, ForAnyValue
            // false, as above).
            SetOp::ForAllValues => request_values.iter().all(|v| satisfies(v)),
            SetOp::ForAnyValue => request_values.iter().any(|v| satisfies(v)),
        })
    }
}

/// The request's values for a (lowercased) condition key; `None` when absent
/// or empty. `aws:PrincipalTag/<k>`, `aws:PrincipalArn` and
/// `aws:PrincipalAccount` come from the principal ("AWS global condition
/// context keys": for a role session aws:PrincipalArn is the role's ARN, not
/// the session's); every other key from the request context.
fn lookup(request: &Request, key: &str) -> Option<Vec<String>> {
    let from_principal =
        |f: fn(&Principal) -> Option<String>| f(&request.principal).map(|v| vec![v]);
    let values = if let Some(tag) = key.strip_prefix("aws:principaltag/") {
        principal_tag(&request.principal, tag).map(|v| vec![v.to_owned()])
    } else if key == "aws:principalarn" {
        from_principal(|p| match p {
            Principal::Role { role_arn, .. } => Some(role_arn.clone()),
            Principal::Service(_) => None,
        })
    } else if key == "aws:principalaccount" {
        from_principal(|p| match p {
            Principal::Role { account, .. } => Some(account.clone()),
            Principal::Service(_) => None,
        })
    } else {
        request.context.get(key).map(<[String]>::to_vec)
    };
    values.filter(|v| !v.is_empty())
}

/// A session tag by key name (case-insensitive; "IAM policy elements:
/// Variables and tags": tag keys are not case-sensitive, values are).
fn principal_tag<'a>(principal: &'a Principal, key: &str) -> Option<&'a str> {
    match principal {
        Principal::Role { tags, .. } => tags
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str()),
        Principal::Service(_) => None,
    }
}

/// The positive comparison of one request value with one policy value.
fn base_matches(base: Base, glob: &[Glob], value: &str) -> bool {
    match base {
        // "Condition operators", string operators: Equals exact and
        // case-sensitive (no wildcards), IgnoreCase ignoring case, Like with
        // `*` and `?`, case-sensitive.
        Base::StringEquals | Base::StringNotEquals => render(glob) == value,
        Base::StringEqualsIgnoreCase | Base::StringNotEqualsIgnoreCase => {
            render(glob).to_lowercase() == value.to_lowercase()
        }
        Base::StringLike | Base::StringNotLike => glob_str(glob, value),
        // "Condition operators", ARN operators: "Each of the six
        // colon-delimited components of the ARN is checked separately and
        // each can include multi-character match wildcards (*) or
        // single-character match wildcards (?)"; this holds for ArnEquals and
        // ArnLike alike. A request value that is not an ARN matches nothing.
        Base::ArnEquals | Base::ArnLike | Base::ArnNotEquals | Base::ArnNotLike => {
            arn_matches(glob, value)
        }
        Base::Bool => render(glob).eq_ignore_ascii_case(value),
        // Handled in `Condition::holds`.
        Base::Null => false,
    }
}

fn arn_matches(glob: &[Glob], value: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    if parts.len() != 6 {
        return false;
    }
    let mut pattern_parts: Vec<&[Glob]> = Vec::with_capacity(6);
    let mut rest = glob;
    while pattern_parts.len() < 5 {
        let Some(i) = rest.iter().position(|g| *g == Glob::Lit(':')) else {
            return false;
        };
        pattern_parts.push(&rest[..i]);
        rest = &rest[i + 1..];
    }
    pattern_parts.push(rest);
    pattern_parts
        .iter()
        .zip(&parts)
        .all(|(p, v)| glob_str(p, v))
}

impl Pattern {
    /// Tokenizes a policy value. "IAM policy elements: Variables and tags":
    /// `${aws:PrincipalTag/<key>}` is substituted from the principal's tags;
    /// `${*}`, `${?}` and `${$}` stand for the literal characters. Any other
    /// variable (including the `${key, 'default'}` form) is unsupported.
    fn parse(text: &str, variables: bool) -> Result<Pattern, PolicyError> {
        let mut toks = Vec::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("${") {
                let Some(end) = after.find('}') else {
                    return Err(malformed(format!(
                        "unterminated policy variable in {text:?}"
                    )));
                };
                let name = &after[..end];
                let variable = format!("${{{name}}}");
                if !variables {
                    return Err(PolicyError::UnsupportedVariable(format!(
                        "{variable} (policy variables need \"Version\": \"{VERSION_2012}\")"
                    )));
                }
                match name {
                    "*" => toks.push(Tok::Lit('*')),
                    "?" => toks.push(Tok::Lit('?')),
                    "$" => toks.push(Tok::Lit('$')),
                    _ => {
                        let lower = name.to_lowercase();
                        match lower.strip_prefix("aws:principaltag/") {
                            Some(tag) if !tag.is_empty() && !tag.contains([',', ' ', '\'']) => {
                                toks.push(Tok::PrincipalTag(tag.to_owned()));
                            }
                            _ => return Err(PolicyError::UnsupportedVariable(variable)),
                        }
                    }
                }
                rest = &after[end + 1..];
                continue;
            }
            toks.push(match c {
                '*' => Tok::Star,
                '?' => Tok::Quest,
                c => Tok::Lit(c),
            });
            rest = &rest[c.len_utf8()..];
        }
        Ok(Pattern { toks })
    }

    /// A value with no variables and no wildcards (Bool, Null).
    fn literal(text: &str) -> Pattern {
        Pattern {
            toks: text.chars().map(Tok::Lit).collect(),
        }
    }

    fn render_literal(&self) -> String {
        self.toks
            .iter()
            .map(|t| match t {
                Tok::Lit(c) => c.to_string(),
                Tok::Star => "*".to_owned(),
                Tok::Quest => "?".to_owned(),
                Tok::PrincipalTag(k) => format!("${{aws:PrincipalTag/{k}}}"),
            })
            .collect()
    }

    /// Substitutes the variables; `None` when a tag is absent (the value then
    /// matches nothing). A substituted tag value is literal text.
    fn resolve(&self, principal: &Principal) -> Option<Vec<Glob>> {
        let mut glob = Vec::with_capacity(self.toks.len());
        for tok in &self.toks {
            match tok {
                Tok::Lit(c) => glob.push(Glob::Lit(*c)),
                Tok::Star => glob.push(Glob::Star),
                Tok::Quest => glob.push(Glob::Quest),
                Tok::PrincipalTag(key) => {
                    glob.extend(principal_tag(principal, key)?.chars().map(Glob::Lit));
                }
            }
        }
        Some(glob)
    }
}

/// The pattern as plain text (wildcards as their characters), for the Equals
/// operators.
fn render(glob: &[Glob]) -> String {
    glob.iter()
        .map(|g| match g {
            Glob::Lit(c) => *c,
            Glob::Star => '*',
            Glob::Quest => '?',
        })
        .collect()
}

/// A pattern where `*` and `?` are the only special characters (actions).
fn plain_glob(pattern: &str) -> Vec<Glob> {
    pattern
        .chars()
        .map(|c| match c {
            '*' => Glob::Star,
            '?' => Glob::Quest,
            c => Glob::Lit(c),
        })
        .collect()
}

/// Wildcard match of a whole string: `*` any run of characters (including
/// none), `?` exactly one character; case-sensitive.
fn glob_str(pattern: &[Glob], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it currently stands up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < text.len() {
        match pattern.get(pi) {
            Some(Glob::Star) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(Glob::Quest) => {
                pi += 1;
                ti += 1;
            }
            Some(Glob::Lit(c)) if *c == text[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[pi..].iter().all(|g| *g == Glob::Star)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACCT: &str = "123456789012";
    const ROLE: &str = "arn:aws:iam::123456789012:role/va/handler";
    const SESSION: &str = "arn:aws:sts::123456789012:assumed-role/handler/s1";
    const TABLE: &str = "arn:aws:dynamodb:eu-west-1:123456789012:table/va-main";
    const KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd";
    const QUEUE: &str = "arn:aws:sqs:eu-west-1:123456789012:va-events";

    fn role(tags: &[(&str, &str)]) -> Principal {
        Principal::Role {
            account: ACCT.to_owned(),
            role_arn: ROLE.to_owned(),
            session_arn: SESSION.to_owned(),
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn req(principal: Principal, action: &str, resource: &str, context: Context) -> Request {
        Request {
            principal,
            action: action.to_owned(),
            resource: resource.to_owned(),
            context,
        }
    }

    fn ctx(pairs: &[(&str, &[&str])]) -> Context {
        let mut c = Context::new();
        for (k, vs) in pairs {
            c.set_all(k, vs.iter().map(|v| (*v).to_owned()).collect());
        }
        c
    }

    /// An identity policy with one Allow statement.
    fn allow(action: &str, resource: &str, condition: Value) -> Policy {
        Policy::parse(&json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "S", "Effect": "Allow", "Action": action,
                "Resource": resource, "Condition": condition
            }]
        }))
        .expect("policy parses")
    }

    /// Identity-policy verdict: allowed and not denied.
    fn allowed(policy: &Policy, request: &Request) -> bool {
        let o = policy.evaluate(request, false).expect("evaluates");
        o.allows_principal && !o.explicit_deny
    }

    fn ddb(context: Context) -> Request {
        req(role(&[("org", "acme")]), "dynamodb:Query", TABLE, context)
    }

    #[test]
    fn leading_keys_for_all_values_string_like() {
        let p = allow(
            "dynamodb:Query",
            TABLE,
            json!({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["org#*#agg#*"]}}),
        );
        let ok = ctx(&[("dynamodb:LeadingKeys", &["org#acme#agg#2024-01-01"])]);
        assert!(allowed(&p, &ddb(ok)));
        let one_outside = ctx(&[(
            "dynamodb:LeadingKeys",
            &["org#acme#agg#2024-01-01", "org#acme#raw#1"],
        )]);
        assert!(!allowed(&p, &ddb(one_outside)));
    }

    #[test]
    fn for_all_values_is_true_when_key_absent() {
        // The documented foot-gun: ForAllValues with no key in the request.
        let p = allow(
            "dynamodb:Query",
            TABLE,
            json!({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["org#*"]}}),
        );
        assert!(allowed(&p, &ddb(Context::new())));
        let any = allow(
            "dynamodb:Query",
            TABLE,
            json!({"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["org#*"]}}),
        );
        assert!(!allowed(&any, &ddb(Context::new())));
    }

    #[test]
    fn attributes_for_all_values_string_equals() {
        let p = allow(
            "dynamodb:GetItem",
            TABLE,
            json!({"ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "sk", "count"]}}),
        );
        let r = |attrs: &[&str]| {
            req(
                role(&[]),
                "dynamodb:GetItem",
                TABLE,
                ctx(&[("dynamodb:Attributes", attrs)]),
            )
        };
        assert!(allowed(&p, &r(&["pk", "count"])));
        assert!(!allowed(&p, &r(&["pk", "secret"])));
    }

    #[test]
    fn select_string_equals_if_exists() {
        let p = allow(
            "dynamodb:Query",
            TABLE,
            json!({"StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"}}),
        );
        assert!(allowed(&p, &ddb(Context::new())));
        let specific = ctx(&[("dynamodb:Select", &["SPECIFIC_ATTRIBUTES"])]);
        assert!(allowed(&p, &ddb(specific)));
        let all = ctx(&[("dynamodb:Select", &["ALL_ATTRIBUTES"])]);
        assert!(!allowed(&p, &ddb(all)));
    }

    #[test]
    fn return_values_string_equals_if_exists() {
        let p = allow(
            "dynamodb:UpdateItem",
            TABLE,
            json!({"StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE", "UPDATED_NEW"]}}),
        );
        let r = |v: &str| {
            let mut c = Context::new();
            c.set("dynamodb:ReturnValues", v);
            req(role(&[]), "dynamodb:UpdateItem", TABLE, c)
        };
        assert!(allowed(&p, &r("UPDATED_NEW")));
        assert!(!allowed(&p, &r("ALL_OLD")));
    }

    #[test]
    fn kms_via_service() {
        let p = allow(
            "kms:Decrypt",
            KEY,
            json!({"StringEquals": {"kms:ViaService": "sqs.eu-west-1.amazonaws.com"}}),
        );
        let r = |via: &str| {
            let mut c = Context::new();
            c.set("kms:ViaService", via);
            req(role(&[]), "kms:Decrypt", KEY, c)
        };
        assert!(allowed(&p, &r("sqs.eu-west-1.amazonaws.com")));
        assert!(!allowed(&p, &r("dynamodb.eu-west-1.amazonaws.com")));
    }

    #[test]
    fn kms_encryption_context_sqs_arn() {
        let r = |arn: &str| {
            let mut c = Context::new();
            c.set("kms:EncryptionContext:aws:sqs:arn", arn);
            req(role(&[]), "kms:GenerateDataKey", KEY, c)
        };
        for op in ["StringEquals", "ForAnyValue:StringEquals"] {
            let p = allow(
                "kms:GenerateDataKey",
                KEY,
                json!({op: {"kms:EncryptionContext:aws:sqs:arn": QUEUE}}),
            );
            assert!(allowed(&p, &r(QUEUE)), "{op}");
            let other = "arn:aws:sqs:eu-west-1:123456789012:other";
            assert!(!allowed(&p, &r(other)), "{op}");
        }
        // ForAnyValue on an absent single-valued key is false.
        let p = allow(
            "kms:GenerateDataKey",
            KEY,
            json!({"ForAnyValue:StringEquals": {"kms:EncryptionContext:aws:sqs:arn": QUEUE}}),
        );
        let absent = req(role(&[]), "kms:GenerateDataKey", KEY, Context::new());
        assert!(!allowed(&p, &absent));
    }

    #[test]
    fn principal_tag_variable_in_leading_keys() {
        let p = allow(
            "dynamodb:Query",
            TABLE,
            json!({"ForAllValues:StringLike": {
                "dynamodb:LeadingKeys": ["org#${aws:PrincipalTag/org}#*"]
            }}),
        );
        let keys = |k: &str| ctx(&[("dynamodb:LeadingKeys", &[k])]);
        let mine = req(
            role(&[("org", "acme")]),
            "dynamodb:Query",
            TABLE,
            keys("org#acme#agg#1"),
        );
        assert!(allowed(&p, &mine));
        let theirs = req(
            role(&[("org", "acme")]),
            "dynamodb:Query",
            TABLE,
            keys("org#evil#agg#1"),
        );
        assert!(!allowed(&p, &theirs));
        let untagged = req(role(&[]), "dynamodb:Query", TABLE, keys("org#acme#agg#1"));
        assert!(!allowed(&p, &untagged));
    }

    #[test]
    fn principal_tag_condition_key_and_absent_tag() {
        let p = allow(
            "dynamodb:Query",
            TABLE,
            json!({"StringEquals": {"aws:PrincipalTag/ORG": "acme"}}),
        );
        assert!(allowed(&p, &ddb(Context::new())));
        let untagged = req(role(&[]), "dynamodb:Query", TABLE, Context::new());
        assert!(!allowed(&p, &untagged));
    }

    #[test]
    fn unresolved_variable_never_allows_through_negated_operator() {
        let p = allow(
            "dynamodb:Query",
            TABLE,
            json!({"StringNotEquals": {"dynamodb:Select": "${aws:PrincipalTag/forbidden}"}}),
        );
        let mut c = Context::new();
        c.set("dynamodb:Select", "ALL_ATTRIBUTES");
        assert!(!allowed(&p, &req(role(&[]), "dynamodb:Query", TABLE, c)));
    }

    /// An SQS queue policy letting EventBridge rules of one account send.
    fn queue_policy() -> Policy {
        Policy::parse(&json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "EventsSend", "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage", "Resource": QUEUE,
                "Condition": {
                    "ArnLike": {"aws:SourceArn": "arn:aws:events:eu-west-1:123456789012:rule/va-*"},
                    "StringEquals": {"aws:SourceAccount": ACCT}
                }
            }]
        }))
        .expect("parses")
    }

    fn events(source_arn: &str, source_account: &str) -> Request {
        let mut c = Context::new();
        c.set("aws:SourceArn", source_arn)
            .set("aws:SourceAccount", source_account);
        req(
            Principal::Service("events.amazonaws.com".to_owned()),
            "sqs:SendMessage",
            QUEUE,
            c,
        )
    }

    #[test]
    fn source_arn_arn_like() {
        let p = queue_policy();
        let ok = events(
            "arn:aws:events:eu-west-1:123456789012:rule/va-conversations",
            ACCT,
        );
        assert!(p.evaluate(&ok, true).expect("evaluates").allows_principal);
        let other_rule = events("arn:aws:events:eu-west-1:123456789012:rule/other", ACCT);
        assert!(
            !p.evaluate(&other_rule, true)
                .expect("evaluates")
                .allows_principal
        );
        let not_arn = events("va-conversations", ACCT);
        assert!(
            !p.evaluate(&not_arn, true)
                .expect("evaluates")
                .allows_principal
        );
    }

    #[test]
    fn source_account_string_equals() {
        let p = queue_policy();
        let arn = "arn:aws:events:eu-west-1:123456789012:rule/va-x";
        assert!(
            p.evaluate(&events(arn, ACCT), true)
                .expect("evaluates")
                .allows_principal
        );
        let foreign = events(arn, "999999999999");
        assert!(
            !p.evaluate(&foreign, true)
                .expect("evaluates")
                .allows_principal
        );
    }

    #[test]
    fn trust_policy_request_tag_and_tag_keys() {
        let p = Policy::parse(&json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": ROLE},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {
                    "StringLike": {"aws:RequestTag/org": "org-*"},
                    "ForAllValues:StringEquals": {"aws:TagKeys": ["org"]}
                }
            }]
        }))
        .expect("parses");
        let r = |org: &str, keys: &[&str]| {
            let mut c = ctx(&[("aws:TagKeys", keys)]);
            c.set("aws:RequestTag/org", org);
            req(
                role(&[]),
                "sts:TagSession",
                "arn:aws:iam::123456789012:role/tenant",
                c,
            )
        };
        assert!(
            p.evaluate(&r("org-1", &["org"]), true)
                .expect("evaluates")
                .allows_principal
        );
        let extra_key = r("org-1", &["org", "admin"]);
        assert!(
            !p.evaluate(&extra_key, true)
                .expect("evaluates")
                .allows_principal
        );
        let bad_value = r("admin", &["org"]);
        assert!(
            !p.evaluate(&bad_value, true)
                .expect("evaluates")
                .allows_principal
        );
    }

    #[test]
    fn explicit_deny_beats_allow() {
        let p = Policy::parse(&json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "dynamodb:DeleteTable", "Resource": TABLE}
            ]
        }))
        .expect("parses");
        let o = p
            .evaluate(
                &req(role(&[]), "dynamodb:DeleteTable", TABLE, Context::new()),
                false,
            )
            .expect("evaluates");
        assert!(o.explicit_deny && o.allows_principal);
        assert!(!allowed(
            &p,
            &req(role(&[]), "dynamodb:DeleteTable", TABLE, Context::new())
        ));
        assert!(allowed(
            &p,
            &req(role(&[]), "dynamodb:GetItem", TABLE, Context::new())
        ));
    }

    #[test]
    fn negated_operator_is_true_when_key_absent() {
        let p = allow(
            "dynamodb:Query",
            TABLE,
            json!({"StringNotEquals": {"dynamodb:Select": "ALL_ATTRIBUTES"}}),
        );
        assert!(allowed(&p, &ddb(Context::new())));
        let all = ctx(&[("dynamodb:Select", &["ALL_ATTRIBUTES"])]);
        assert!(!allowed(&p, &ddb(all)));
    }

    #[test]
    fn not_action() {
        let p = Policy::parse(&json!({
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "NotAction": "dynamodb:Delete*", "Resource": TABLE}
        }))
        .expect("parses");
        assert!(allowed(
            &p,
            &req(role(&[]), "dynamodb:PutItem", TABLE, Context::new())
        ));
        assert!(!allowed(
            &p,
            &req(role(&[]), "dynamodb:DeleteItem", TABLE, Context::new())
        ));
    }

    #[test]
    fn action_wildcard_and_case_insensitivity() {
        let p = allow("DynamoDB:Get*", TABLE, json!({}));
        assert!(allowed(
            &p,
            &req(role(&[]), "dynamodb:getitem", TABLE, Context::new())
        ));
        assert!(!allowed(
            &p,
            &req(role(&[]), "dynamodb:PutItem", TABLE, Context::new())
        ));
        let q = allow("sqs:?endMessage", QUEUE, json!({}));
        assert!(allowed(
            &q,
            &req(role(&[]), "sqs:SendMessage", QUEUE, Context::new())
        ));
        let all = allow("*", "*", json!({}));
        assert!(allowed(
            &all,
            &req(role(&[]), "kms:Decrypt", KEY, Context::new())
        ));
    }

    #[test]
    fn resource_wildcard_and_question_mark() {
        let p = allow(
            "dynamodb:Query",
            "arn:aws:dynamodb:*:123456789012:table/va-main/index/gsi?",
            json!({}),
        );
        let r = |res: &str| req(role(&[]), "dynamodb:Query", res, Context::new());
        assert!(allowed(
            &p,
            &r("arn:aws:dynamodb:eu-west-1:123456789012:table/va-main/index/gsi1")
        ));
        assert!(!allowed(
            &p,
            &r("arn:aws:dynamodb:eu-west-1:123456789012:table/va-main/index/gsi12")
        ));
        assert!(!allowed(
            &p,
            &r("arn:aws:dynamodb:eu-west-1:123456789012:table/VA-MAIN/index/gsi1")
        ));
    }

    #[test]
    fn unknown_operator_is_error() {
        for op in [
            "NumericLessThan",
            "StringEqualsFoo",
            "ForAllValues:Bool",
            "NullIfExists",
        ] {
            let err = Policy::parse(&json!({"Version": "2012-10-17", "Statement": {
                "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                "Condition": {op: {"aws:SourceAccount": "1"}}
            }}))
            .expect_err(op);
            assert_eq!(err, PolicyError::UnsupportedOperator(op.to_owned()));
        }
    }

    #[test]
    fn unknown_key_is_error() {
        let err = Policy::parse(&json!({"Statement": {
            "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}
        }}))
        .expect_err("unknown key");
        assert_eq!(err, PolicyError::UnsupportedKey("aws:SourceVpc".to_owned()));
    }

    #[test]
    fn multivalued_key_with_plain_operator_is_error() {
        let err = Policy::parse(&json!({"Statement": {
            "Effect": "Allow", "Action": "dynamodb:Query", "Resource": "*",
            "Condition": {"StringLike": {"dynamodb:LeadingKeys": "org#*"}}
        }}))
        .expect_err("multivalued");
        assert!(matches!(err, PolicyError::MultivaluedWithoutSet { .. }));
    }

    #[test]
    fn unsupported_variables_and_elements_are_errors() {
        let with_resource = |r: &str| {
            Policy::parse(&json!({"Version": "2012-10-17", "Statement": {
                "Effect": "Allow", "Action": "s3:GetObject", "Resource": r
            }}))
        };
        assert!(matches!(
            with_resource("arn:aws:s3:::b/${aws:username}/*"),
            Err(PolicyError::UnsupportedVariable(_))
        ));
        assert!(with_resource("arn:aws:s3:::b/${*}x${?}${$}").is_ok());
        let not_principal = Policy::parse(&json!({"Statement": {
            "Effect": "Deny", "NotPrincipal": {"AWS": ROLE}, "Action": "*", "Resource": "*"
        }}));
        assert_eq!(
            not_principal.expect_err("NotPrincipal"),
            PolicyError::Malformed("NotPrincipal unsupported".to_owned())
        );
        let unknown = Policy::parse(&json!({"Statement": {
            "Effect": "Allow", "Action": "*", "Resource": "*", "Extra": 1
        }}));
        assert!(matches!(unknown, Err(PolicyError::Malformed(_))));
    }

    #[test]
    fn principal_in_identity_policy_is_malformed() {
        let p = Policy::parse(&json!({"Statement": {
            "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"
        }}))
        .expect("parses");
        let r = req(role(&[]), "sqs:SendMessage", QUEUE, Context::new());
        assert!(matches!(
            p.evaluate(&r, false),
            Err(PolicyError::Malformed(_))
        ));
        let identity = allow("*", "*", json!({}));
        assert!(matches!(
            identity.evaluate(&r, true),
            Err(PolicyError::Malformed(_))
        ));
    }

    /// A KMS key policy statement with the given principal.
    fn key_policy(principal: Value) -> Policy {
        Policy::parse(&json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "Enable IAM policies", "Effect": "Allow",
                "Principal": principal, "Action": "kms:*", "Resource": "*"
            }]
        }))
        .expect("parses")
    }

    #[test]
    fn account_root_principal_sets_allows_account() {
        let r = req(role(&[]), "kms:Decrypt", KEY, Context::new());
        for principal in [
            json!({"AWS": "arn:aws:iam::123456789012:root"}),
            json!({"AWS": ACCT}),
        ] {
            let o = key_policy(principal).evaluate(&r, true).expect("evaluates");
            assert!(o.allows_account && !o.allows_principal && !o.explicit_deny);
        }
        let foreign = key_policy(json!({"AWS": "arn:aws:iam::999999999999:root"}));
        assert_eq!(
            foreign.evaluate(&r, true).expect("evaluates"),
            Outcome::default()
        );
    }

    #[test]
    fn role_arn_principal_matches_session_of_that_role() {
        let r = req(role(&[]), "kms:Decrypt", KEY, Context::new());
        let o = key_policy(json!({"AWS": ROLE}))
            .evaluate(&r, true)
            .expect("evaluates");
        assert!(o.allows_principal && !o.allows_account);
        let session = key_policy(json!({"AWS": SESSION}));
        assert!(
            session
                .evaluate(&r, true)
                .expect("evaluates")
                .allows_principal
        );
        let other = key_policy(json!({"AWS": "arn:aws:iam::123456789012:role/other"}));
        assert!(
            !other
                .evaluate(&r, true)
                .expect("evaluates")
                .allows_principal
        );
    }

    #[test]
    fn without_removes_statement_and_one_action() {
        let p = Policy::parse(&json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Read", "Effect": "Allow",
                 "Action": ["dynamodb:GetItem", "dynamodb:Query"], "Resource": TABLE},
                {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": QUEUE}
            ]
        }))
        .expect("parses");
        assert_eq!(p.sids(), vec!["Read".to_owned(), "#1".to_owned()]);
        assert_eq!(
            p.actions_of("Read"),
            vec!["dynamodb:GetItem", "dynamodb:Query"]
        );
        let fewer = p.without("Read", Some("dynamodb:Query"));
        assert_eq!(fewer.actions_of("Read"), vec!["dynamodb:GetItem"]);
        let query = req(role(&[]), "dynamodb:Query", TABLE, Context::new());
        assert!(allowed(&p, &query) && !allowed(&fewer, &query));
        let gone = fewer.without("Read", Some("dynamodb:GetItem"));
        assert_eq!(gone.sids(), vec!["#1".to_owned()]);
        assert_eq!(p.without("#1", None).sids(), vec!["Read".to_owned()]);
    }
}
