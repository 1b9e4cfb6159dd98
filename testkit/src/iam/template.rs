//! `infra/template.yaml`'s policies, resolved for one test stack.
//!
//! The enforcing double authorizes each AWS request against the policies
//! the template gives the caller. Those policies are written with
//! CloudFormation's intrinsic functions (`!Ref`, `!GetAtt`, `!Sub`, `!If`,
//! ...); this module evaluates them for one stack: its name, account and
//! region, its parameters (the template's defaults for those not given),
//! and the physical names and attributes its resources got
//! ([`StackNames`]). The result is plain IAM JSON for `super::policy`.
//!
//! A resource whose `Condition` is false does not exist in the stack: the
//! accessors return `None` for it. A `!Ref` or `!GetAtt` of a resource the
//! names do not bind is an error naming the binding, so a caller learns
//! which names its stack must provide. Only the branches the conditions
//! take are evaluated: a SingleOrg stack need not bind MultiOrg resources.
//!
//! The documents are the template's own: SAM's implicit additions to a
//! function's role (the managed `AWSLambdaBasicExecutionRole`, X-Ray's
//! write access, an event invoke config's destination policy) are not
//! included.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};
use serde_norway::Value as Yaml;

/// What a test stack chose and what its resources are called.
#[derive(Debug, Clone)]
pub struct StackNames {
    /// `AWS::StackName`.
    pub stack_name: String,
    /// `AWS::AccountId`, e.g. "123456789012".
    pub account: String,
    /// `AWS::Region`, e.g. "us-east-1".
    pub region: String,
    /// Template parameters by name (Tenancy, DeliveryMode,
    /// GenesysSecretArn, GenesysEventSourceName, ... any the template
    /// uses). Parameters not given take the template's `Default`.
    pub parameters: BTreeMap<String, String>,
    /// Logical id -> physical id (what `!Ref X` returns for a resource):
    /// table names, queue URLs, key ids, role names, rule names...
    pub refs: BTreeMap<String, String>,
    /// "LogicalId.Attr" -> value (what `!GetAtt X.Attr` returns), e.g.
    /// "AnalyticsTable.Arn", "DeadLetterQueue.Arn", "DataKey.Arn",
    /// "DashboardApiFunctionRole.Arn".
    pub attributes: BTreeMap<String, String>,
}

/// Why the template could not be read or a value not resolved.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file could not be read or is not a template.
    #[error("reading the template: {0}")]
    Read(String),
    /// A value could not be resolved; `at` is its path in the template.
    #[error("{at}: {what}")]
    Resolve {
        /// Where, e.g. `Resources.X.Properties.Policies[0].Statement[2].Resource`.
        at: String,
        /// What went wrong.
        what: String,
    },
}

fn fail<T>(at: &str, what: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError::Resolve {
        at: at.to_string(),
        what: what.into(),
    })
}

/// The template, parsed once.
#[derive(Debug, Clone)]
pub struct Template {
    root: Yaml,
}

const SERVERLESS_FUNCTION: &str = "AWS::Serverless::Function";
const IAM_ROLE: &str = "AWS::IAM::Role";

impl Template {
    /// `infra/template.yaml` of this repository.
    pub fn main() -> Result<Template, TemplateError> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| TemplateError::Read(format!("{}: {e}", path.display())))?;
        Template::parse(&text)
    }

    /// A template from its YAML text (CloudFormation's short-form tags
    /// included).
    pub fn parse(yaml: &str) -> Result<Template, TemplateError> {
        let root: Yaml =
            serde_norway::from_str(yaml).map_err(|e| TemplateError::Read(e.to_string()))?;
        if !root.is_mapping() {
            return Err(TemplateError::Read("the template is not a mapping".into()));
        }
        if !root.get("Resources").is_some_and(Yaml::is_mapping) {
            return Err(TemplateError::Read("the template has no Resources".into()));
        }
        Ok(Template { root })
    }

    /// The identity policy documents of a role, resolved.
    ///
    /// - An `AWS::Serverless::Function` logical id (or the id of the role
    ///   SAM makes for it, `<Function>Role`): each inline document of
    ///   `Properties.Policies`. Managed policies and SAM policy templates
    ///   are errors.
    /// - An `AWS::IAM::Role` logical id: each `Properties.Policies[].PolicyDocument`.
    ///
    /// Statements whose `!If` resolves to `AWS::NoValue` are dropped.
    /// `None` when the resource's `Condition` is false.
    pub fn role_policies(
        &self,
        names: &StackNames,
        logical_id: &str,
    ) -> Result<Option<Vec<Json>>, TemplateError> {
        let mut r = Resolver::new(&self.root, names);
        let (id, resource, kind) = self.role_resource(logical_id)?;
        if !r.exists(id, resource)? {
            return Ok(None);
        }
        let at = format!("Resources.{id}.Properties.Policies");
        let Some(policies) = resource.get("Properties").and_then(|p| p.get("Policies")) else {
            return Ok(Some(Vec::new()));
        };
        let policies = match r.value(policies, &at)? {
            None => Vec::new(),
            Some(Json::Array(items)) => items,
            Some(other) => vec![other],
        };
        let mut documents = Vec::new();
        for (i, policy) in policies.into_iter().enumerate() {
            let at = format!("{at}[{i}]");
            match kind {
                RoleKind::Function => match policy {
                    Json::Object(ref o) if o.contains_key("Statement") => documents.push(policy),
                    Json::String(name) => {
                        return fail(
                            &at,
                            format!(
                                "managed policy {name}: only inline policy documents are supported"
                            ),
                        );
                    }
                    Json::Object(o) => {
                        let keys: Vec<&String> = o.keys().collect();
                        return fail(
                            &at,
                            format!(
                                "SAM policy template {keys:?}: only inline policy documents are supported"
                            ),
                        );
                    }
                    other => return fail(&at, format!("not a policy document: {other}")),
                },
                RoleKind::Role => match policy {
                    Json::Object(mut o) => match o.remove("PolicyDocument") {
                        Some(document) => documents.push(document),
                        None => return fail(&at, "a role policy without a PolicyDocument"),
                    },
                    other => return fail(&at, format!("not a role policy: {other}")),
                },
            }
        }
        Ok(Some(documents))
    }

    /// `Properties.KeyPolicy` of an `AWS::KMS::Key` (KMS's default key
    /// policy when the template gives none). `None` when the key's
    /// `Condition` is false.
    pub fn key_policy(
        &self,
        names: &StackNames,
        logical_id: &str,
    ) -> Result<Option<Json>, TemplateError> {
        let mut r = Resolver::new(&self.root, names);
        let resource = self.typed_resource(logical_id, "AWS::KMS::Key")?;
        if !r.exists(logical_id, resource)? {
            return Ok(None);
        }
        let at = format!("Resources.{logical_id}.Properties.KeyPolicy");
        let given = match resource.get("Properties").and_then(|p| p.get("KeyPolicy")) {
            Some(policy) => r.value(policy, &at)?,
            None => None,
        };
        Ok(Some(given.unwrap_or_else(|| default_key_policy(names))))
    }

    /// `Properties.PolicyDocument` of the `AWS::SQS::QueuePolicy` whose
    /// `Queues` include `!Ref <queue_logical_id>`. `None` when the queue or
    /// the policy does not exist in this stack.
    pub fn queue_policy(
        &self,
        names: &StackNames,
        queue_logical_id: &str,
    ) -> Result<Option<Json>, TemplateError> {
        let mut r = Resolver::new(&self.root, names);
        let queue = self.typed_resource(queue_logical_id, "AWS::SQS::Queue")?;
        if !r.exists(queue_logical_id, queue)? {
            return Ok(None);
        }
        let mut found = Vec::new();
        for (id, resource) in self.resources() {
            if resource.get("Type").and_then(Yaml::as_str) != Some("AWS::SQS::QueuePolicy") {
                continue;
            }
            let names_queue = resource
                .get("Properties")
                .and_then(|p| p.get("Queues"))
                .and_then(Yaml::as_sequence)
                .is_some_and(|queues| {
                    queues.iter().any(|q| {
                        matches!(intrinsic(q), Some((f, Yaml::String(target))) if f == "Ref" && target == queue_logical_id)
                    })
                });
            if names_queue && r.exists(&id, resource)? {
                found.push((id, resource));
            }
        }
        match found.as_slice() {
            [] => Ok(None),
            [(id, resource)] => {
                let at = format!("Resources.{id}.Properties.PolicyDocument");
                match resource
                    .get("Properties")
                    .and_then(|p| p.get("PolicyDocument"))
                {
                    Some(document) => r.value(document, &at),
                    None => fail(&at, "a queue policy without a PolicyDocument"),
                }
            }
            many => {
                let ids: Vec<&String> = many.iter().map(|(id, _)| id).collect();
                fail(
                    &format!("Resources.{queue_logical_id}"),
                    format!("several queue policies name the queue: {ids:?}"),
                )
            }
        }
    }

    /// `Properties.AssumeRolePolicyDocument` of an `AWS::IAM::Role`; for
    /// the role SAM makes for a function (`<Function>Role`, or the
    /// function's own id), the function's `AssumeRolePolicyDocument` or
    /// SAM's default (Lambda may assume it). `None` when the role does not
    /// exist in this stack.
    pub fn trust_policy(
        &self,
        names: &StackNames,
        logical_id: &str,
    ) -> Result<Option<Json>, TemplateError> {
        let mut r = Resolver::new(&self.root, names);
        let (id, resource, kind) = self.role_resource(logical_id)?;
        if !r.exists(id, resource)? {
            return Ok(None);
        }
        let own = resource
            .get("Properties")
            .and_then(|p| p.get("AssumeRolePolicyDocument"));
        match kind {
            RoleKind::Role => match own {
                Some(document) => r.value(
                    document,
                    &format!("Resources.{id}.Properties.AssumeRolePolicyDocument"),
                ),
                None => fail(
                    &format!("Resources.{id}.Properties"),
                    "a role without an AssumeRolePolicyDocument",
                ),
            },
            RoleKind::Function => {
                let global = self
                    .root
                    .get("Globals")
                    .and_then(|g| g.get("Function"))
                    .and_then(|f| f.get("AssumeRolePolicyDocument"));
                let resolved = match (own, global) {
                    (Some(document), _) => r.value(
                        document,
                        &format!("Resources.{id}.Properties.AssumeRolePolicyDocument"),
                    )?,
                    (None, Some(document)) => {
                        r.value(document, "Globals.Function.AssumeRolePolicyDocument")?
                    }
                    (None, None) => None,
                };
                Ok(Some(resolved.unwrap_or_else(lambda_trust_policy)))
            }
        }
    }

    /// Whether a named template Condition holds (e.g. "MultiOrg",
    /// "BatchDelivery").
    pub fn condition(&self, names: &StackNames, name: &str) -> Result<bool, TemplateError> {
        Resolver::new(&self.root, names).condition_named(name, "Conditions")
    }

    /// Resolves any value at a path of the template, e.g.
    /// `["Resources", "QueueKey", "Properties", "KeyPolicy"]`. Numbers
    /// index sequences. `None` when the path is under a resource whose
    /// `Condition` is false, or the value resolves to `AWS::NoValue`; an
    /// error when the path names nothing.
    pub fn resolve(
        &self,
        names: &StackNames,
        path: &[&str],
    ) -> Result<Option<Json>, TemplateError> {
        let mut r = Resolver::new(&self.root, names);
        if let ["Resources", id, ..] = path {
            let resource = self.resource(id)?;
            if !r.exists(id, resource)? {
                return Ok(None);
            }
        }
        let mut node = &self.root;
        let mut at = String::new();
        for (i, segment) in path.iter().enumerate() {
            if intrinsic(node).is_some() {
                // The rest of the path is inside a computed value.
                let Some(value) = r.value(node, &at)? else {
                    return Ok(None);
                };
                return walk_json(value, &path[i..], &at).map(Some);
            }
            let next = match node {
                Yaml::Mapping(m) => m.get(*segment),
                Yaml::Sequence(items) => segment.parse::<usize>().ok().and_then(|n| items.get(n)),
                _ => None,
            };
            at = join_path(&at, segment);
            match next {
                Some(next) => node = next,
                None => return fail(&at, "not in the template"),
            }
        }
        r.value(node, &at)
    }

    fn resources(&self) -> impl Iterator<Item = (String, &Yaml)> {
        self.root
            .get("Resources")
            .and_then(Yaml::as_mapping)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v)))
    }

    fn resource(&self, logical_id: &str) -> Result<&Yaml, TemplateError> {
        match self.root.get("Resources").and_then(|r| r.get(logical_id)) {
            Some(resource) => Ok(resource),
            None => fail(
                &format!("Resources.{logical_id}"),
                "no such resource in the template",
            ),
        }
    }

    fn typed_resource(&self, logical_id: &str, kind: &str) -> Result<&Yaml, TemplateError> {
        let resource = self.resource(logical_id)?;
        let found = resource.get("Type").and_then(Yaml::as_str).unwrap_or("");
        if found != kind {
            return fail(
                &format!("Resources.{logical_id}.Type"),
                format!("{found}, not {kind}"),
            );
        }
        Ok(resource)
    }

    /// A role's resource: an IAM role, a SAM function, or the function of
    /// the role SAM makes for it (`<Function>Role`).
    fn role_resource<'a, 'b>(
        &'a self,
        logical_id: &'b str,
    ) -> Result<(&'b str, &'a Yaml, RoleKind), TemplateError> {
        let resources = self.root.get("Resources");
        let kind_of = |resource: &Yaml| match resource.get("Type").and_then(Yaml::as_str) {
            Some(IAM_ROLE) => Some(RoleKind::Role),
            Some(SERVERLESS_FUNCTION) => Some(RoleKind::Function),
            _ => None,
        };
        let (id, resource) = match resources.and_then(|r| r.get(logical_id)) {
            Some(resource) => (logical_id, resource),
            None => match logical_id
                .strip_suffix("Role")
                .and_then(|f| Some((f, resources?.get(f)?)))
            {
                Some((function, resource))
                    if matches!(kind_of(resource), Some(RoleKind::Function)) =>
                {
                    (function, resource)
                }
                _ => {
                    return fail(
                        &format!("Resources.{logical_id}"),
                        "no such role or function in the template",
                    );
                }
            },
        };
        let Some(kind) = kind_of(resource) else {
            let found = resource.get("Type").and_then(Yaml::as_str).unwrap_or("");
            return fail(
                &format!("Resources.{id}.Type"),
                format!("{found}, not {IAM_ROLE} or {SERVERLESS_FUNCTION}"),
            );
        };
        if kind == RoleKind::Function
            && resource
                .get("Properties")
                .and_then(|p| p.get("Role"))
                .is_some()
        {
            return fail(
                &format!("Resources.{id}.Properties.Role"),
                "the function has its own role; ask for that role",
            );
        }
        Ok((id, resource, kind))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoleKind {
    /// An `AWS::IAM::Role`.
    Role,
    /// An `AWS::Serverless::Function` (the role SAM makes for it).
    Function,
}

/// KMS's default key policy: the account administers and uses the key
/// through IAM.
fn default_key_policy(names: &StackNames) -> Json {
    serde_json::json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:aws:iam::{}:root", names.account) },
            "Action": "kms:*",
            "Resource": "*",
        }],
    })
}

/// The trust policy SAM gives a function's role.
fn lambda_trust_policy() -> Json {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": ["lambda.amazonaws.com"] },
            "Action": ["sts:AssumeRole"],
        }],
    })
}

fn join_path(at: &str, segment: &str) -> String {
    if at.is_empty() {
        segment.to_string()
    } else if segment.parse::<usize>().is_ok() {
        format!("{at}[{segment}]")
    } else {
        format!("{at}.{segment}")
    }
}

fn walk_json(mut value: Json, path: &[&str], at: &str) -> Result<Json, TemplateError> {
    let mut at = at.to_string();
    for segment in path {
        at = join_path(&at, segment);
        let next = match value {
            Json::Object(mut o) => o.remove(*segment),
            Json::Array(mut items) => match segment.parse::<usize>() {
                Ok(n) if n < items.len() => Some(items.swap_remove(n)),
                _ => None,
            },
            _ => None,
        };
        match next {
            Some(next) => value = next,
            None => return fail(&at, "not in the resolved value"),
        }
    }
    Ok(value)
}

/// An intrinsic function call: its name without `!` or `Fn::`, and its
/// argument. Short form (`!Sub x`) or long form (`{"Fn::Sub": x}`,
/// `{"Ref": x}`).
fn intrinsic(v: &Yaml) -> Option<(String, &Yaml)> {
    match v {
        Yaml::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_string(),
            &t.value,
        )),
        Yaml::Mapping(m) if m.len() == 1 => {
            let (key, argument) = m.iter().next()?;
            let key = key.as_str()?;
            if key == "Ref" {
                Some(("Ref".to_string(), argument))
            } else {
                key.strip_prefix("Fn::")
                    .map(|name| (name.to_string(), argument))
            }
        }
        _ => None,
    }
}

/// A scalar as the string CloudFormation would use.
fn scalar_string(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn yaml_scalar_string(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number(n: &serde_norway::Number) -> Option<Json> {
    if let Some(i) = n.as_i64() {
        Some(Json::from(i))
    } else if let Some(u) = n.as_u64() {
        Some(Json::from(u))
    } else {
        n.as_f64()
            .and_then(serde_json::Number::from_f64)
            .map(Json::Number)
    }
}

/// Evaluates intrinsics for one stack.
struct Resolver<'a> {
    root: &'a Yaml,
    names: &'a StackNames,
    /// Conditions being evaluated (a cycle is an error).
    visiting: Vec<String>,
}

impl<'a> Resolver<'a> {
    fn new(root: &'a Yaml, names: &'a StackNames) -> Self {
        Resolver {
            root,
            names,
            visiting: Vec::new(),
        }
    }

    /// Whether a resource exists in this stack (its `Condition` holds).
    fn exists(&mut self, id: &str, resource: &Yaml) -> Result<bool, TemplateError> {
        match resource.get("Condition") {
            None => Ok(true),
            Some(Yaml::String(name)) => {
                self.condition_named(name, &format!("Resources.{id}.Condition"))
            }
            Some(_) => fail(&format!("Resources.{id}.Condition"), "not a condition name"),
        }
    }

    /// The JSON of `v`; `None` for `AWS::NoValue`.
    fn value(&mut self, v: &Yaml, at: &str) -> Result<Option<Json>, TemplateError> {
        if let Some((function, argument)) = intrinsic(v) {
            return self.call(&function, argument, at);
        }
        Ok(Some(match v {
            Yaml::Null => Json::Null,
            Yaml::Bool(b) => Json::Bool(*b),
            Yaml::Number(n) => match number(n) {
                Some(n) => n,
                None => return fail(at, format!("{n} is not a JSON number")),
            },
            Yaml::String(s) => Json::String(s.clone()),
            Yaml::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    if let Some(item) = self.value(item, &format!("{at}[{i}]"))? {
                        out.push(item);
                    }
                }
                Json::Array(out)
            }
            Yaml::Mapping(m) => {
                let mut out = Map::new();
                for (key, item) in m {
                    let Some(key) = yaml_scalar_string(key) else {
                        return fail(at, format!("a mapping key that is not a scalar: {key:?}"));
                    };
                    if let Some(item) = self.value(item, &join_path(at, &key))? {
                        out.insert(key, item);
                    }
                }
                Json::Object(out)
            }
            // Unreachable: `intrinsic` takes every tagged value.
            Yaml::Tagged(t) => return fail(at, format!("unsupported tag {}", t.tag)),
        }))
    }

    /// A value that must be a string (numbers are written out).
    fn string(&mut self, v: &Yaml, at: &str) -> Result<String, TemplateError> {
        match self.value(v, at)? {
            Some(value) => match value {
                Json::String(s) => Ok(s),
                Json::Number(n) => Ok(n.to_string()),
                other => fail(at, format!("{other} is not a string")),
            },
            None => fail(at, "AWS::NoValue where a string is needed"),
        }
    }

    /// A value that must be a list.
    fn list(&mut self, v: &Yaml, at: &str) -> Result<Vec<Json>, TemplateError> {
        match self.value(v, at)? {
            Some(Json::Array(items)) => Ok(items),
            Some(other) => fail(at, format!("{other} is not a list")),
            None => fail(at, "AWS::NoValue where a list is needed"),
        }
    }

    fn arguments<'v>(
        argument: &'v Yaml,
        function: &str,
        count: std::ops::RangeInclusive<usize>,
        at: &str,
    ) -> Result<&'v [Yaml], TemplateError> {
        match argument.as_sequence() {
            Some(items) if count.contains(&items.len()) => Ok(items),
            _ => fail(
                at,
                format!(
                    "Fn::{function} takes a list of {} to {} arguments",
                    count.start(),
                    count.end()
                ),
            ),
        }
    }

    /// An intrinsic function's value.
    fn call(
        &mut self,
        function: &str,
        argument: &Yaml,
        at: &str,
    ) -> Result<Option<Json>, TemplateError> {
        let at = &format!("{at}.Fn::{function}");
        match function {
            "Ref" => match argument {
                Yaml::String(name) => self.reference(name, at),
                _ => fail(at, "Ref takes a name"),
            },
            "GetAtt" => {
                let (id, attribute) = match argument {
                    Yaml::String(s) => match s.split_once('.') {
                        Some((id, attribute)) => (id.to_string(), attribute.to_string()),
                        None => return fail(at, format!("{s} is not LogicalId.Attribute")),
                    },
                    Yaml::Sequence(items) if items.len() == 2 => {
                        let Some(id) = items[0].as_str() else {
                            return fail(at, "Fn::GetAtt's logical id must be a string");
                        };
                        (id.to_string(), self.string(&items[1], &format!("{at}[1]"))?)
                    }
                    _ => {
                        return fail(
                            at,
                            "Fn::GetAtt takes LogicalId.Attribute or [LogicalId, Attribute]",
                        );
                    }
                };
                self.attribute(&id, &attribute, at)
                    .map(|v| Some(Json::String(v)))
            }
            "Sub" => self.sub(argument, at).map(|s| Some(Json::String(s))),
            "If" => {
                let items = Self::arguments(argument, function, 3..=3, at)?;
                let Some(condition) = items[0].as_str() else {
                    return fail(at, "Fn::If's first argument must be a condition name");
                };
                if self.condition_named(condition, at)? {
                    self.value(&items[1], &format!("{at}[1]"))
                } else {
                    self.value(&items[2], &format!("{at}[2]"))
                }
            }
            "Equals" | "And" | "Or" | "Not" | "Condition" => self
                .condition_call(function, argument, at)
                .map(|b| Some(Json::Bool(b))),
            "FindInMap" => {
                let items = Self::arguments(argument, function, 3..=3, at)?;
                let map = self.string(&items[0], &format!("{at}[0]"))?;
                let top = self.string(&items[1], &format!("{at}[1]"))?;
                let second = self.string(&items[2], &format!("{at}[2]"))?;
                let Some(found) = self
                    .root
                    .get("Mappings")
                    .and_then(|m| m.get(map.as_str()))
                    .and_then(|m| m.get(top.as_str()))
                    .and_then(|m| m.get(second.as_str()))
                else {
                    return fail(at, format!("no Mappings.{map}.{top}.{second}"));
                };
                self.value(found, &format!("Mappings.{map}.{top}.{second}"))
            }
            "Join" => {
                let items = Self::arguments(argument, function, 2..=2, at)?;
                let delimiter = self.string(&items[0], &format!("{at}[0]"))?;
                let parts = self.list(&items[1], &format!("{at}[1]"))?;
                let mut strings = Vec::with_capacity(parts.len());
                for part in &parts {
                    match scalar_string(part) {
                        Some(s) => strings.push(s),
                        None => return fail(at, format!("cannot join {part}")),
                    }
                }
                Ok(Some(Json::String(strings.join(&delimiter))))
            }
            "Select" => {
                let items = Self::arguments(argument, function, 2..=2, at)?;
                let index = self.string(&items[0], &format!("{at}[0]"))?;
                let Ok(index) = index.trim().parse::<usize>() else {
                    return fail(at, format!("index {index} is not a number"));
                };
                let mut list = self.list(&items[1], &format!("{at}[1]"))?;
                if index >= list.len() {
                    return fail(
                        at,
                        format!("index {index} is out of a list of {}", list.len()),
                    );
                }
                Ok(Some(list.swap_remove(index)))
            }
            "Split" => {
                let items = Self::arguments(argument, function, 2..=2, at)?;
                let delimiter = self.string(&items[0], &format!("{at}[0]"))?;
                if delimiter.is_empty() {
                    return fail(at, "Fn::Split's delimiter is empty");
                }
                let source = self.string(&items[1], &format!("{at}[1]"))?;
                Ok(Some(Json::Array(
                    source
                        .split(delimiter.as_str())
                        .map(|s| Json::String(s.to_string()))
                        .collect(),
                )))
            }
            other => fail(at, format!("unsupported intrinsic function {other}")),
        }
    }

    /// A template condition by name.
    fn condition_named(&mut self, name: &str, at: &str) -> Result<bool, TemplateError> {
        let Some(definition) = self.root.get("Conditions").and_then(|c| c.get(name)) else {
            return fail(at, format!("no condition {name} in the template"));
        };
        if self.visiting.iter().any(|v| v == name) {
            return fail(
                at,
                format!("condition {name} depends on itself: {:?}", self.visiting),
            );
        }
        self.visiting.push(name.to_string());
        let result = self.condition_expression(definition, &format!("Conditions.{name}"));
        self.visiting.pop();
        result
    }

    /// A condition expression: `Fn::Equals`, `Fn::And`, `Fn::Or`,
    /// `Fn::Not` or `Condition`.
    fn condition_expression(&mut self, v: &Yaml, at: &str) -> Result<bool, TemplateError> {
        if let Yaml::Mapping(m) = v
            && m.len() == 1
            && let Some(Yaml::String(name)) = m.get("Condition")
        {
            return self.condition_named(name, &format!("{at}.Condition"));
        }
        match intrinsic(v) {
            Some((function, argument)) => {
                self.condition_call(&function, argument, &format!("{at}.Fn::{function}"))
            }
            None => fail(
                at,
                "not a condition (Fn::Equals, Fn::And, Fn::Or, Fn::Not, Condition)",
            ),
        }
    }

    fn condition_call(
        &mut self,
        function: &str,
        argument: &Yaml,
        at: &str,
    ) -> Result<bool, TemplateError> {
        match function {
            "Equals" => {
                let items = Self::arguments(argument, function, 2..=2, at)?;
                let a = self.value(&items[0], &format!("{at}[0]"))?;
                let b = self.value(&items[1], &format!("{at}[1]"))?;
                Ok(match (&a, &b) {
                    (Some(a), Some(b)) => match (scalar_string(a), scalar_string(b)) {
                        (Some(a), Some(b)) => a == b,
                        _ => a == b,
                    },
                    _ => a == b,
                })
            }
            "And" | "Or" => {
                let items = Self::arguments(argument, function, 2..=10, at)?;
                let mut results = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    results.push(self.condition_expression(item, &format!("{at}[{i}]"))?);
                }
                Ok(if function == "And" {
                    results.iter().all(|r| *r)
                } else {
                    results.iter().any(|r| *r)
                })
            }
            "Not" => {
                let items = Self::arguments(argument, function, 1..=1, at)?;
                Ok(!self.condition_expression(&items[0], &format!("{at}[0]"))?)
            }
            "Condition" => match argument {
                Yaml::String(name) => self.condition_named(name, at),
                _ => fail(at, "Condition takes a condition name"),
            },
            other => fail(at, format!("{other} is not a condition function")),
        }
    }

    fn is_resource(&self, id: &str) -> bool {
        self.root.get("Resources").and_then(|r| r.get(id)).is_some()
    }

    fn parameter(&self, name: &str, at: &str) -> Option<Result<Json, TemplateError>> {
        let declared = self.root.get("Parameters")?.get(name)?;
        let value = match self.names.parameters.get(name) {
            Some(given) => given.clone(),
            None => match declared.get("Default").and_then(yaml_scalar_string) {
                Some(default) => default,
                None => {
                    return Some(fail(
                        at,
                        format!("parameter {name} has no Default: give names.parameters[{name:?}]"),
                    ));
                }
            },
        };
        let kind = declared
            .get("Type")
            .and_then(Yaml::as_str)
            .unwrap_or("String");
        Some(Ok(
            if kind == "CommaDelimitedList" || kind.starts_with("List<") {
                Json::Array(
                    value
                        .split(',')
                        .map(|s| Json::String(s.trim().to_string()))
                        .collect(),
                )
            } else {
                Json::String(value)
            },
        ))
    }

    /// `Ref name`; `None` for `AWS::NoValue`.
    fn reference(&mut self, name: &str, at: &str) -> Result<Option<Json>, TemplateError> {
        let names = self.names;
        let pseudo = match name {
            "AWS::NoValue" => return Ok(None),
            "AWS::StackName" => Some(names.stack_name.clone()),
            "AWS::AccountId" => Some(names.account.clone()),
            "AWS::Region" => Some(names.region.clone()),
            "AWS::Partition" => Some("aws".to_string()),
            "AWS::URLSuffix" => Some("amazonaws.com".to_string()),
            _ if name.starts_with("AWS::") => {
                return fail(at, format!("unsupported pseudo parameter {name}"));
            }
            _ => None,
        };
        if let Some(value) = pseudo {
            return Ok(Some(Json::String(value)));
        }
        if let Some(value) = self.parameter(name, at) {
            return value.map(Some);
        }
        if let Some(physical) = names.refs.get(name) {
            return Ok(Some(Json::String(physical.clone())));
        }
        if self.is_resource(name) {
            fail(
                at,
                format!("no physical id for {name}: bind names.refs[{name:?}]"),
            )
        } else {
            fail(
                at,
                format!(
                    "{name} is no parameter, pseudo parameter or resource of the template (and names.refs has no {name:?})"
                ),
            )
        }
    }

    /// `Fn::GetAtt id.attribute`.
    fn attribute(&self, id: &str, attribute: &str, at: &str) -> Result<String, TemplateError> {
        let key = format!("{id}.{attribute}");
        match self.names.attributes.get(&key) {
            Some(value) => Ok(value.clone()),
            None => fail(
                at,
                format!("no value for {key}: bind names.attributes[{key:?}]"),
            ),
        }
    }

    /// `Fn::Sub`: a string, or `[string, {variables}]`.
    fn sub(&mut self, argument: &Yaml, at: &str) -> Result<String, TemplateError> {
        let (text, variables) = match argument {
            Yaml::String(text) => (text.as_str(), BTreeMap::new()),
            Yaml::Sequence(items) if items.len() == 2 => {
                let Some(text) = items[0].as_str() else {
                    return fail(at, "Fn::Sub's first argument must be a string");
                };
                let Some(mapping) = items[1].as_mapping() else {
                    return fail(
                        at,
                        "Fn::Sub's second argument must be a mapping of variables",
                    );
                };
                let mut variables = BTreeMap::new();
                for (key, value) in mapping {
                    let Some(key) = key.as_str() else {
                        return fail(at, "a Fn::Sub variable name must be a string");
                    };
                    let value_at = format!("{at}[1].{key}");
                    let value = self.string(value, &value_at)?;
                    variables.insert(key.to_string(), value);
                }
                (text, variables)
            }
            _ => return fail(at, "Fn::Sub takes a string or [string, {variables}]"),
        };
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return fail(at, format!("unterminated ${{ in {text:?}"));
            };
            let name = &after[..end];
            rest = &after[end + 1..];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
                continue;
            }
            out.push_str(&self.sub_variable(name, &variables, at)?);
        }
        out.push_str(rest);
        Ok(out)
    }

    fn sub_variable(
        &mut self,
        name: &str,
        variables: &BTreeMap<String, String>,
        at: &str,
    ) -> Result<String, TemplateError> {
        if let Some(value) = variables.get(name) {
            return Ok(value.clone());
        }
        let known = name.starts_with("AWS::")
            || self
                .root
                .get("Parameters")
                .and_then(|p| p.get(name))
                .is_some()
            || self.is_resource(name)
            || self.names.refs.contains_key(name);
        if known {
            return match self.reference(name, at)? {
                Some(Json::String(s)) => Ok(s),
                Some(other) => fail(at, format!("${{{name}}} is {other}, not a string")),
                None => fail(at, format!("${{{name}}} is AWS::NoValue")),
            };
        }
        if let Some((id, attribute)) = name.split_once('.')
            && (self.is_resource(id)
                || self.names.attributes.contains_key(name)
                || self.names.refs.contains_key(id))
        {
            return self.attribute(id, attribute, at);
        }
        fail(
            at,
            format!(
                "${{{name}}} names no parameter, pseudo parameter, resource, attribute or Fn::Sub variable"
            ),
        )
    }
}

/// Names for unit tests and examples: a stack `stack` in account
/// 123456789012, us-east-1, with Tenancy MultiOrg (else SingleOrg, with a
/// secret and a partner event source) and DeliveryMode Batch (else
/// PerEvent), binding every resource that exists in that configuration
/// (and only those): tables, queues, keys, functions and their SAM roles,
/// the org reader role, the rules, log groups and the dashboard's Cognito
/// pool, client and HTTP API.
pub fn example_names(stack: &str, multi_org: bool, batch: bool) -> StackNames {
    let account = "123456789012";
    let region = "us-east-1";
    let mut parameters = BTreeMap::new();
    let mut refs = BTreeMap::new();
    let mut attributes = BTreeMap::new();
    let mut bind = |id: &str, physical: String, attrs: &[(&str, String)]| {
        refs.insert(id.to_string(), physical);
        for (attribute, value) in attrs {
            attributes.insert(format!("{id}.{attribute}"), value.clone());
        }
    };

    parameters.insert(
        "Tenancy".to_string(),
        if multi_org { "MultiOrg" } else { "SingleOrg" }.to_string(),
    );
    parameters.insert(
        "DeliveryMode".to_string(),
        if batch { "Batch" } else { "PerEvent" }.to_string(),
    );
    let bus = format!("aws.partner/genesys.com/cloud/6f0ed8b2-1f4e-4c64-9d1b-2a3c4d5e6f70/{stack}");
    if !multi_org {
        parameters.insert(
            "GenesysSecretArn".to_string(),
            format!("arn:aws:secretsmanager:{region}:{account}:secret:{stack}-genesys-AbCdEf"),
        );
        parameters.insert("GenesysEventSourceName".to_string(), bus.clone());
    }

    let mut tables = vec![("TokenTable", "tokens"), ("AnalyticsTable", "analytics")];
    if multi_org {
        tables.push(("TenantTable", "tenants"));
    }
    for (id, suffix) in tables {
        let name = format!("{stack}-{suffix}");
        let arn = format!("arn:aws:dynamodb:{region}:{account}:table/{name}");
        bind(id, name, &[("Arn", arn)]);
    }

    let mut queues = vec![("DeadLetterQueue", "dead-letters")];
    if batch {
        queues.push(("EventQueue", "events"));
    }
    for (id, suffix) in queues {
        let name = format!("{stack}-{suffix}");
        let url = format!("https://sqs.{region}.amazonaws.com/{account}/{name}");
        let arn = format!("arn:aws:sqs:{region}:{account}:{name}");
        bind(
            id,
            url.clone(),
            &[("Arn", arn), ("QueueName", name), ("QueueUrl", url)],
        );
    }

    for (id, key) in [
        ("DataKey", "0d7a3c1e-5b2f-4e8a-9c61-000000000001"),
        ("TokenKey", "0d7a3c1e-5b2f-4e8a-9c61-000000000002"),
        ("QueueKey", "0d7a3c1e-5b2f-4e8a-9c61-000000000003"),
    ] {
        let arn = format!("arn:aws:kms:{region}:{account}:key/{key}");
        bind(
            id,
            key.to_string(),
            &[("Arn", arn), ("KeyId", key.to_string())],
        );
    }

    for (id, logs) in [
        ("TokenRefresherFunction", "TokenRefresherLogs"),
        ("ConversationEventsFunction", "ConversationEventsLogs"),
        ("EnrichmentSweeperFunction", "EnrichmentSweeperLogs"),
        ("DashboardApiFunction", "DashboardApiLogs"),
    ] {
        let name = format!("{stack}-{id}-A1B2C3D4");
        let arn = format!("arn:aws:lambda:{region}:{account}:function:{name}");
        let role = format!("{stack}-{id}Role-E5F6G7H8");
        let role_arn = format!("arn:aws:iam::{account}:role/{role}");
        let group = format!("/aws/lambda/{name}");
        let group_arn = format!("arn:aws:logs:{region}:{account}:log-group:{group}:*");
        bind(id, name, &[("Arn", arn)]);
        bind(&format!("{id}Role"), role, &[("Arn", role_arn)]);
        bind(logs, group, &[("Arn", group_arn)]);
    }
    let access_logs = format!("{stack}-DashboardAccessLogs-I9J0K1L2");
    let access_logs_arn = format!("arn:aws:logs:{region}:{account}:log-group:{access_logs}:*");
    bind(
        "DashboardAccessLogs",
        access_logs,
        &[("Arn", access_logs_arn)],
    );

    if multi_org {
        let role = format!("{stack}-DashboardOrgReaderRole-M3N4O5P6");
        let arn = format!("arn:aws:iam::{account}:role/{stack}/{role}");
        bind("DashboardOrgReaderRole", role, &[("Arn", arn)]);
    } else {
        let rule = format!("{stack}-conversation-events");
        let arn = format!("arn:aws:events:{region}:{account}:rule/{bus}/{rule}");
        let id = if batch { "BatchRule" } else { "PerEventRule" };
        bind(id, format!("{bus}|{rule}"), &[("Arn", arn)]);
    }

    let pool = format!("{region}_AbCdEfGhI");
    let pool_arn = format!("arn:aws:cognito-idp:{region}:{account}:userpool/{pool}");
    bind("DashboardUserPool", pool, &[("Arn", pool_arn)]);
    bind(
        "DashboardUserPoolClient",
        "1example23456789abcdefghij".to_string(),
        &[],
    );
    bind("DashboardHttpApi", "a1b2c3d4e5".to_string(), &[]);

    StackNames {
        stack_name: stack.to_string(),
        account: account.to_string(),
        region: region.to_string(),
        parameters,
        refs,
        attributes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STACK: &str = "va-test";

    fn template() -> Template {
        Template::main().expect("infra/template.yaml")
    }

    /// Every statement of a role's documents.
    fn statements(t: &Template, names: &StackNames, role: &str) -> Vec<Json> {
        t.role_policies(names, role)
            .expect("resolves")
            .expect("the role exists")
            .iter()
            .flat_map(|d| d["Statement"].as_array().cloned().expect("statements"))
            .collect()
    }

    fn sid<'s>(statements: &'s [Json], sid: &str) -> Option<&'s Json> {
        statements.iter().find(|s| s["Sid"] == sid)
    }

    fn configurations() -> [(bool, bool); 4] {
        [(false, false), (false, true), (true, false), (true, true)]
    }

    #[test]
    fn conversation_events_writes_the_analytics_table() {
        let t = template();
        let single = example_names(STACK, false, false);
        let s = statements(&t, &single, "ConversationEventsFunction");
        let writes = sid(&s, "AnalyticsWrites").expect("AnalyticsWrites");
        assert_eq!(
            writes["Resource"],
            "arn:aws:dynamodb:us-east-1:123456789012:table/va-test-analytics"
        );
        assert_eq!(
            writes["Action"],
            serde_json::json!(["dynamodb:PutItem", "dynamodb:UpdateItem"])
        );
        assert!(sid(&s, "TenantRead").is_none());
        assert!(sid(&s, "BatchQueue").is_none());
        assert!(s.iter().all(|s| s.is_object()), "no NoValue left: {s:?}");
        let key = sid(&s, "QueueKey").expect("QueueKey");
        assert_eq!(
            key["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sqs:arn"],
            "arn:aws:sqs:us-east-1:123456789012:va-test-dead-letters"
        );
        assert_eq!(
            key["Condition"]["StringEquals"]["kms:ViaService"],
            "sqs.us-east-1.amazonaws.com"
        );

        let multi = example_names(STACK, true, true);
        let s = statements(&t, &multi, "ConversationEventsFunction");
        let tenant = sid(&s, "TenantRead").expect("TenantRead in MultiOrg");
        assert_eq!(
            tenant["Resource"],
            "arn:aws:dynamodb:us-east-1:123456789012:table/va-test-tenants"
        );
        assert_eq!(
            sid(&s, "BatchQueue").expect("BatchQueue in Batch")["Resource"],
            "arn:aws:sqs:us-east-1:123456789012:va-test-events"
        );
    }

    #[test]
    fn sweeper_secret_is_the_stacks_org_prefix_or_the_parameter() {
        let t = template();
        let multi = example_names(STACK, true, false);
        let s = statements(&t, &multi, "EnrichmentSweeperFunction");
        assert_eq!(
            sid(&s, "OAuthClientSecretForSingleFlightRecovery").expect("secret")["Resource"],
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:va-test/org/*"
        );
        assert!(sid(&s, "TenantsList").is_some());

        let single = example_names(STACK, false, false);
        let s = statements(&t, &single, "EnrichmentSweeperFunction");
        assert_eq!(
            sid(&s, "OAuthClientSecretForSingleFlightRecovery").expect("secret")["Resource"],
            single.parameters["GenesysSecretArn"].as_str()
        );
        assert!(sid(&s, "TenantsList").is_none());
    }

    #[test]
    fn queue_key_confines_use_to_the_two_queues() {
        let t = template();
        for (multi_org, batch) in configurations() {
            let names = example_names(STACK, multi_org, batch);
            let policy = t
                .key_policy(&names, "QueueKey")
                .expect("resolves")
                .expect("exists");
            let s = policy["Statement"].as_array().expect("statements");
            let roles = sid(s, "RolesOfThisAccountUseItForThisStacksQueuesOnly").expect("sid");
            assert_eq!(
                roles["Condition"]["ForAnyValue:StringEquals"]["kms:EncryptionContext:aws:sqs:arn"],
                serde_json::json!([
                    "arn:aws:sqs:us-east-1:123456789012:va-test-dead-letters",
                    "arn:aws:sqs:us-east-1:123456789012:va-test-events",
                ])
            );
            assert_eq!(roles["Principal"]["AWS"], "arn:aws:iam::123456789012:root");
            let rules = sid(s, "GenesysRulesSendToQueues").expect("sid");
            let source = &rules["Condition"]["ArnLike"]["aws:SourceArn"];
            if multi_org {
                assert_eq!(
                    source,
                    "arn:aws:events:us-east-1:123456789012:rule/aws.partner/genesys.com/cloud/*/va-test-*"
                );
            } else {
                assert_eq!(
                    source.as_str().expect("string"),
                    format!(
                        "arn:aws:events:us-east-1:123456789012:rule/{}/va-test-*",
                        names.parameters["GenesysEventSourceName"]
                    )
                );
            }
            assert_eq!(
                rules["Condition"]["StringEquals"]["aws:SourceAccount"],
                "123456789012"
            );
        }
    }

    #[test]
    fn data_and_token_keys_are_administered_by_the_account() {
        let t = template();
        let names = example_names(STACK, false, false);
        for key in ["DataKey", "TokenKey"] {
            let policy = t
                .key_policy(&names, key)
                .expect("resolves")
                .expect("exists");
            assert_eq!(
                policy["Statement"][0]["Principal"]["AWS"],
                "arn:aws:iam::123456789012:root"
            );
            assert_eq!(policy["Statement"][0]["Action"], "kms:*");
        }
    }

    #[test]
    fn org_reader_role_trusts_the_dashboard_role_only_in_multi_org() {
        let t = template();
        let multi = example_names(STACK, true, false);
        let trust = t
            .trust_policy(&multi, "DashboardOrgReaderRole")
            .expect("resolves")
            .expect("exists in MultiOrg");
        assert_eq!(
            trust["Statement"][0]["Principal"]["AWS"],
            multi.attributes["DashboardApiFunctionRole.Arn"].as_str()
        );
        let s = statements(&t, &multi, "DashboardOrgReaderRole");
        let buckets = sid(&s, "TheTaggedOrgsBuckets").expect("sid");
        assert_eq!(
            buckets["Resource"],
            "arn:aws:dynamodb:us-east-1:123456789012:table/va-test-analytics"
        );
        // IAM policy variables outside a Sub stay literal.
        assert_eq!(
            buckets["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"][0],
            "org#${aws:PrincipalTag/org}#agg#*"
        );
        assert_eq!(
            sid(&s, "AnalyticsTableKey").expect("sid")["Condition"]["StringEquals"]["kms:EncryptionContext:aws:dynamodb:tableName"],
            "va-test-analytics"
        );
        let dashboard = statements(&t, &multi, "DashboardApiFunction");
        assert_eq!(
            sid(&dashboard, "AssumeOneOrgReader").expect("sid")["Resource"],
            "arn:aws:iam::123456789012:role/va-test/*"
        );

        let single = example_names(STACK, false, false);
        assert!(
            t.trust_policy(&single, "DashboardOrgReaderRole")
                .expect("resolves")
                .is_none()
        );
        assert!(
            t.role_policies(&single, "DashboardOrgReaderRole")
                .expect("resolves")
                .is_none()
        );
        assert!(
            sid(
                &statements(&t, &single, "DashboardApiFunction"),
                "AssumeOneOrgReader"
            )
            .is_none()
        );
    }

    #[test]
    fn event_queue_policy_exists_only_in_batch() {
        let t = template();
        for multi_org in [false, true] {
            let names = example_names(STACK, multi_org, false);
            assert!(
                t.queue_policy(&names, "EventQueue")
                    .expect("resolves")
                    .is_none()
            );
        }
        let single = example_names(STACK, false, true);
        let policy = t
            .queue_policy(&single, "EventQueue")
            .expect("resolves")
            .expect("exists");
        let s = &policy["Statement"][0];
        assert_eq!(
            s["Resource"],
            "arn:aws:sqs:us-east-1:123456789012:va-test-events"
        );
        assert_eq!(
            s["Condition"]["ArnLike"]["aws:SourceArn"],
            single.attributes["BatchRule.Arn"].as_str()
        );
        let multi = example_names(STACK, true, true);
        let policy = t
            .queue_policy(&multi, "EventQueue")
            .expect("resolves")
            .expect("exists");
        assert_eq!(
            policy["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"],
            "arn:aws:events:us-east-1:123456789012:rule/aws.partner/genesys.com/cloud/*/va-test-*"
        );
    }

    #[test]
    fn dead_letter_queue_policy_exists_in_every_stack() {
        let t = template();
        for (multi_org, batch) in configurations() {
            let names = example_names(STACK, multi_org, batch);
            let policy = t
                .queue_policy(&names, "DeadLetterQueue")
                .expect("resolves")
                .expect("exists");
            assert_eq!(
                policy["Statement"][0]["Resource"],
                "arn:aws:sqs:us-east-1:123456789012:va-test-dead-letters"
            );
            assert_eq!(
                policy["Statement"][0]["Principal"]["Service"],
                "events.amazonaws.com"
            );
        }
    }

    #[test]
    fn every_policy_resolves_in_every_configuration() {
        let t = template();
        let functions = [
            "TokenRefresherFunction",
            "ConversationEventsFunction",
            "EnrichmentSweeperFunction",
            "DashboardApiFunction",
        ];
        for (multi_org, batch) in configurations() {
            let names = example_names(STACK, multi_org, batch);
            for f in functions {
                let by_function = t.role_policies(&names, f).expect(f).expect("exists");
                let by_role = t
                    .role_policies(&names, &format!("{f}Role"))
                    .expect(f)
                    .expect("exists");
                assert_eq!(by_function, by_role);
                assert_eq!(by_function.len(), 1, "{f}");
                assert!(!statements(&t, &names, f).is_empty());
                let trust = t
                    .trust_policy(&names, &format!("{f}Role"))
                    .expect(f)
                    .expect("exists");
                assert_eq!(
                    trust["Statement"][0]["Principal"]["Service"][0],
                    "lambda.amazonaws.com"
                );
            }
            for key in ["DataKey", "TokenKey", "QueueKey"] {
                assert!(t.key_policy(&names, key).expect(key).is_some());
            }
            for queue in ["DeadLetterQueue", "EventQueue"] {
                let policy = t.queue_policy(&names, queue).expect(queue);
                assert_eq!(policy.is_some(), queue == "DeadLetterQueue" || batch);
            }
            let reader = t
                .role_policies(&names, "DashboardOrgReaderRole")
                .expect("reader");
            assert_eq!(reader.is_some(), multi_org);
        }
    }

    #[test]
    fn conditions_follow_the_parameters_and_defaults() {
        let t = template();
        let names = example_names(STACK, true, true);
        assert!(t.condition(&names, "MultiOrg").expect("MultiOrg"));
        assert!(!t.condition(&names, "SingleOrg").expect("SingleOrg"));
        assert!(t.condition(&names, "BatchDelivery").expect("BatchDelivery"));
        assert!(
            !t.condition(&names, "SingleOrgBatch")
                .expect("SingleOrgBatch")
        );
        let names = example_names(STACK, false, true);
        assert!(
            t.condition(&names, "SingleOrgBatch")
                .expect("SingleOrgBatch")
        );
        assert!(
            !t.condition(&names, "SingleOrgPerEvent")
                .expect("SingleOrgPerEvent")
        );
        assert!(!t.condition(&names, "HasAlarmTopic").expect("HasAlarmTopic"));

        let mut defaults = example_names(STACK, false, false);
        defaults.parameters.clear();
        assert!(t.condition(&defaults, "SingleOrg").expect("SingleOrg"));
        assert!(
            t.condition(&defaults, "PerEventDelivery")
                .expect("PerEventDelivery")
        );
        assert!(t.condition(&defaults, "Nope").is_err());
    }

    #[test]
    fn resolve_reads_any_path() {
        let t = template();
        let names = example_names(STACK, false, false);
        let key = t
            .resolve(
                &names,
                &["Resources", "QueueKey", "Properties", "KeyPolicy"],
            )
            .expect("resolves");
        assert_eq!(key, t.key_policy(&names, "QueueKey").expect("resolves"));
        let schedule = t
            .resolve(
                &names,
                &[
                    "Resources",
                    "TokenRefresherFunction",
                    "Properties",
                    "Events",
                    "Tick",
                    "Properties",
                    "Schedule",
                ],
            )
            .expect("resolves");
        assert_eq!(schedule, Some(Json::from("rate(1 minute)")));
        let retention = t
            .resolve(
                &names,
                &[
                    "Resources",
                    "DeadLetterQueue",
                    "Properties",
                    "MessageRetentionPeriod",
                ],
            )
            .expect("resolves");
        assert_eq!(retention, Some(Json::from(1_209_600)));
        let first = t
            .resolve(
                &names,
                &[
                    "Resources",
                    "DeadLetterQueuePolicy",
                    "Properties",
                    "PolicyDocument",
                    "Statement",
                    "0",
                    "Sid",
                ],
            )
            .expect("resolves");
        assert_eq!(first, Some(Json::from("EventBridgeRuleDeadLetters")));
        // A resource that does not exist in this stack.
        assert_eq!(
            t.resolve(&names, &["Resources", "TenantTable", "Properties"])
                .expect("resolves"),
            None
        );
        // Through an intrinsic: the If picks the secret parameter.
        let secret = t
            .resolve(
                &names,
                &[
                    "Resources",
                    "TokenRefresherFunction",
                    "Properties",
                    "Policies",
                    "0",
                    "Statement",
                    "1",
                    "Resource",
                ],
            )
            .expect("resolves");
        assert_eq!(
            secret.as_ref(),
            Some(&Json::from(names.parameters["GenesysSecretArn"].clone()))
        );
        assert!(
            t.resolve(&names, &["Resources", "QueueKey", "Nope"])
                .is_err()
        );
    }

    #[test]
    fn a_missing_binding_is_named() {
        let t = template();
        let mut names = example_names(STACK, false, false);
        names.attributes.remove("AnalyticsTable.Arn");
        let error = t
            .role_policies(&names, "ConversationEventsFunction")
            .expect_err("AnalyticsTable.Arn is not bound")
            .to_string();
        assert!(error.contains("AnalyticsTable.Arn"), "{error}");
        assert!(
            error.contains("Resources.ConversationEventsFunction.Properties.Policies"),
            "{error}"
        );

        let mut names = example_names(STACK, false, false);
        names.refs.remove("TokenTable");
        let error = t
            .role_policies(&names, "TokenRefresherFunction")
            .expect_err("TokenTable is not bound")
            .to_string();
        assert!(error.contains("names.refs[\"TokenTable\"]"), "{error}");
    }

    const SMALL: &str = r#"
Parameters:
  Stage: { Type: String, Default: prod }
  Sizes: { Type: CommaDelimitedList, Default: "a,b,c" }
Mappings:
  Periods:
    "1": { Seconds: 60 }
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: { "Fn::Not": [{ Condition: IsProd }] }
  Both: !And [!Condition IsProd, !Not [!Condition NotProd]]
  Loop: !Not [!Condition Loop]
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Gone:
    Type: AWS::SQS::Queue
    Condition: NotProd
  Thing:
    Type: Custom::Thing
    Properties:
      Unknown: !Sub "${Nope}"
      Literal: !Sub "${!Literal} and ${AWS::Region}"
      Vars: !Sub ["${Name}-${AWS::StackName}-${Queue.Arn}", { Name: !Ref Stage }]
      Joined: !Join ["/", [a, !Ref Stage, !Select [1, !Ref Sizes]]]
      Split: !Select [2, !Split [":", "x:y:z"]]
      LongIf: { "Fn::If": [IsProd, { Ref: Stage }, { Ref: "AWS::NoValue" }] }
      Dropped: !If [NotProd, yes, !Ref AWS::NoValue]
      List: [one, !If [NotProd, two, !Ref AWS::NoValue], 3, true]
      Seconds: !FindInMap [Periods, "1", Seconds]
      ListAtt: !GetAtt [Queue, Arn]
      LongAtt: { "Fn::GetAtt": Queue.Arn }
      Url: !Sub "https://x.${AWS::URLSuffix}/${AWS::Partition}"
      Both: !If [Both, on, off]
      Loop: !If [Loop, on, off]
      Import: !ImportValue other
  Function:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - AWSLambdaBasicExecutionRole
  Templated:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - SQSSendMessagePolicy: { QueueName: q }
"#;

    fn small() -> (Template, StackNames) {
        let t = Template::parse(SMALL).expect("parses");
        let mut names = example_names("s", false, false);
        names.parameters.clear();
        names.attributes.insert(
            "Queue.Arn".into(),
            "arn:aws:sqs:us-east-1:123456789012:q".into(),
        );
        (t, names)
    }

    fn thing(
        t: &Template,
        names: &StackNames,
        property: &str,
    ) -> Result<Option<Json>, TemplateError> {
        t.resolve(names, &["Resources", "Thing", "Properties", property])
    }

    #[test]
    fn an_unknown_sub_variable_is_an_error() {
        let (t, names) = small();
        let error = thing(&t, &names, "Unknown")
            .expect_err("${Nope}")
            .to_string();
        assert!(error.contains("${Nope}"), "{error}");
        assert!(
            error.starts_with("Resources.Thing.Properties.Unknown"),
            "{error}"
        );
    }

    #[test]
    fn intrinsics_short_and_long_forms() {
        let (t, names) = small();
        let get = |p: &str| thing(&t, &names, p).expect(p);
        assert_eq!(get("Literal"), Some(Json::from("${Literal} and us-east-1")));
        assert_eq!(
            get("Vars"),
            Some(Json::from("prod-s-arn:aws:sqs:us-east-1:123456789012:q"))
        );
        assert_eq!(get("Joined"), Some(Json::from("a/prod/b")));
        assert_eq!(get("Split"), Some(Json::from("z")));
        assert_eq!(get("LongIf"), Some(Json::from("prod")));
        assert_eq!(get("Dropped"), None);
        assert_eq!(get("List"), Some(serde_json::json!(["one", 3, true])));
        assert_eq!(get("Seconds"), Some(Json::from(60)));
        assert_eq!(get("ListAtt"), get("LongAtt"));
        assert_eq!(
            get("ListAtt"),
            Some(Json::from("arn:aws:sqs:us-east-1:123456789012:q"))
        );
        assert_eq!(get("Url"), Some(Json::from("https://x.amazonaws.com/aws")));
        assert_eq!(get("Both"), Some(Json::from("on")));
        let properties = t
            .resolve(&names, &["Resources", "Function", "Type"])
            .expect("resolves");
        assert_eq!(properties, Some(Json::from("AWS::Serverless::Function")));
        assert!(thing(&t, &names, "Loop").is_err());
        let error = thing(&t, &names, "Import")
            .expect_err("unsupported")
            .to_string();
        assert!(error.contains("ImportValue"), "{error}");

        let mut staging = names.clone();
        staging.parameters.insert("Stage".into(), "dev".into());
        assert_eq!(
            thing(&t, &staging, "Dropped").expect("resolves"),
            Some(Json::from("yes"))
        );
        assert_eq!(thing(&t, &staging, "LongIf").expect("resolves"), None);
        assert!(t.queue_policy(&names, "Gone").expect("resolves").is_none());
        assert!(t.queue_policy(&names, "Queue").expect("resolves").is_none());
    }

    #[test]
    fn managed_policies_and_policy_templates_are_refused() {
        let (t, names) = small();
        let error = t
            .role_policies(&names, "Function")
            .expect_err("managed")
            .to_string();
        assert!(error.contains("AWSLambdaBasicExecutionRole"), "{error}");
        let error = t
            .role_policies(&names, "Templated")
            .expect_err("template")
            .to_string();
        assert!(error.contains("SQSSendMessagePolicy"), "{error}");
        assert!(t.role_policies(&names, "Queue").is_err());
        assert!(t.role_policies(&names, "Nope").is_err());
    }
}
