//! One test's deployment as IAM sees it: the template's roles, key policies
//! and queue policies resolved for the test's own names, and the denials
//! its calls met.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use super::policy::{Policy, Principal};
use super::request::{ACCOUNT, REGION, queue_arn, table_arn};
use super::template::{StackNames, Template, TemplateError};

/// Which tenancy the stack is deployed with (the template's `Tenancy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenancy {
    SingleOrg,
    MultiOrg,
}

/// How events arrive (the template's `DeliveryMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    PerEvent,
    Batch,
}

/// The template's choices a test deploys with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub tenancy: Tenancy,
    pub delivery: Delivery,
    /// Secrets under a customer managed key (`GenesysSecretKeyArn`).
    pub secret_key: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            tenancy: Tenancy::SingleOrg,
            delivery: Delivery::PerEvent,
            secret_key: false,
        }
    }
}

/// The roles a test's calls are made as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    TokenRefresher,
    ConversationEvents,
    EnrichmentSweeper,
    DashboardApi,
    /// The dashboard's per-org reader, assumed with the session tag `org`.
    DashboardOrgReader,
    /// Whoever runs `va-admin`: a role of the deployer's with the stack's
    /// `OperatorPolicy` attached.
    Operator,
}

impl Role {
    pub const FUNCTIONS: [Role; 4] = [
        Role::TokenRefresher,
        Role::ConversationEvents,
        Role::EnrichmentSweeper,
        Role::DashboardApi,
    ];
    pub const ALL: [Role; 6] = [
        Role::TokenRefresher,
        Role::ConversationEvents,
        Role::EnrichmentSweeper,
        Role::DashboardApi,
        Role::DashboardOrgReader,
        Role::Operator,
    ];

    /// The template's logical id of the resource the role belongs to.
    pub fn logical_id(self) -> &'static str {
        match self {
            Role::TokenRefresher => "TokenRefresherFunction",
            Role::ConversationEvents => "ConversationEventsFunction",
            Role::EnrichmentSweeper => "EnrichmentSweeperFunction",
            Role::DashboardApi => "DashboardApiFunction",
            Role::DashboardOrgReader => "DashboardOrgReaderRole",
            Role::Operator => "OperatorPolicy",
        }
    }

    /// The role's own logical id: SAM names a function's role
    /// `<Function>Role`; the operator's role is the deployer's own.
    pub fn role_id(self) -> String {
        match self {
            Role::DashboardOrgReader => "DashboardOrgReaderRole".into(),
            Role::Operator => "OperatorRole".into(),
            f => format!("{}Role", f.logical_id()),
        }
    }
}

/// A call the double refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The role (or service) that made the call.
    pub caller: String,
    /// The API operation refused.
    pub action: String,
    /// AWS's message (it names the action and the resource).
    pub message: String,
}

/// A role of the stack: its ARN, identity policies and trust policy.
#[derive(Debug, Clone)]
pub struct RoleEntry {
    pub arn: String,
    pub name: String,
    pub policies: Vec<Policy>,
    pub trust: Option<Policy>,
}

/// The deployment a test's calls are authorized against.
#[derive(Debug)]
pub struct StackBinding {
    pub names: StackNames,
    pub shape: Shape,
    roles: RwLock<BTreeMap<Role, RoleEntry>>,
    /// Key ARN -> key policy.
    pub keys: BTreeMap<String, Policy>,
    /// Table name -> the ARN of the key it is encrypted with.
    pub table_keys: BTreeMap<String, String>,
    /// Queue ARN -> the ARN of its key.
    pub queue_keys: BTreeMap<String, String>,
    /// Queue ARN -> its queue policy.
    pub queue_policies: BTreeMap<String, Policy>,
    /// The secrets' customer managed key, with `Shape::secret_key`.
    pub secret_key: Option<String>,
    denials: Mutex<Vec<Denial>>,
}

/// The physical names of one test's resources.
#[derive(Debug, Clone)]
pub struct Resources {
    pub stack_name: String,
    pub token_table: String,
    pub analytics_table: String,
    pub tenant_table: String,
    /// The SingleOrg secret's ARN.
    pub secret_arn: String,
    pub dead_letter_queue_url: String,
    pub event_queue_url: String,
}

fn key_arn(stack: &str, key: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (stack, key).hash(&mut h);
    // A stable key id per stack and key, shaped as KMS's.
    let id = uuid::Uuid::from_u64_pair(h.finish(), 0);
    format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{id}")
}

/// The event bus a SingleOrg stack's rules are on.
pub fn event_source_name(stack: &str) -> String {
    format!("aws.partner/genesys.com/cloud/00000000-0000-4000-8000-000000000001/{stack}")
}

/// The ARN of a stack's rule on a bus.
pub fn rule_arn(bus: &str, rule: &str) -> String {
    format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/{bus}/{rule}")
}

/// The names every policy of the template refers to, bound to `res`.
pub fn stack_names(res: &Resources, shape: Shape) -> StackNames {
    let stack = &res.stack_name;
    let mut refs = BTreeMap::new();
    let mut attributes = BTreeMap::new();
    let mut bind = |id: &str, r: String, arn: String| {
        refs.insert(id.to_string(), r);
        attributes.insert(format!("{id}.Arn"), arn);
    };
    for (id, table) in [
        ("TokenTable", &res.token_table),
        ("AnalyticsTable", &res.analytics_table),
        ("TenantTable", &res.tenant_table),
    ] {
        bind(id, table.clone(), table_arn(table));
    }
    for (id, url) in [
        ("DeadLetterQueue", &res.dead_letter_queue_url),
        ("EventQueue", &res.event_queue_url),
    ] {
        bind(id, url.clone(), queue_arn(url));
    }
    for key in ["DataKey", "TokenKey", "QueueKey"] {
        let arn = key_arn(stack, key);
        let id = arn.rsplit('/').next().unwrap_or_default().to_string();
        bind(key, id, arn);
    }
    for role in Role::ALL {
        let (name, arn) = role_name_arn(stack, role);
        bind(&role.role_id(), name, arn);
    }
    let bus = event_source_name(stack);
    for (id, rule) in [
        ("BatchRule", format!("{stack}-conversation-events")),
        ("PerEventRule", format!("{stack}-conversation-events")),
    ] {
        bind(id, format!("{bus}|{rule}"), rule_arn(&bus, &rule));
    }
    for f in Role::FUNCTIONS {
        let name = format!("{stack}-{}", f.logical_id());
        let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}");
        bind(f.logical_id(), name, arn);
    }
    bind(
        "DashboardUserPool",
        format!("{REGION}_{stack}"),
        format!("arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{REGION}_{stack}"),
    );
    bind("DashboardUserPoolClient", "client".into(), String::new());
    let mut parameters = BTreeMap::new();
    let multi = shape.tenancy == Tenancy::MultiOrg;
    parameters.insert(
        "Tenancy".into(),
        if multi { "MultiOrg" } else { "SingleOrg" }.into(),
    );
    parameters.insert(
        "DeliveryMode".into(),
        match shape.delivery {
            Delivery::PerEvent => "PerEvent",
            Delivery::Batch => "Batch",
        }
        .into(),
    );
    if !multi {
        parameters.insert("GenesysSecretArn".into(), res.secret_arn.clone());
        parameters.insert("GenesysEventSourceName".into(), bus);
    }
    if shape.secret_key {
        parameters.insert("GenesysSecretKeyArn".into(), key_arn(stack, "SecretKey"));
    }
    StackNames {
        stack_name: stack.clone(),
        account: ACCOUNT.into(),
        region: REGION.into(),
        parameters,
        refs,
        attributes,
    }
}

/// A role's physical name and ARN: SAM's `<stack>-<Function>Role-<suffix>`;
/// the org reader's path is the stack's name (the template's `Path`).
fn role_name_arn(stack: &str, role: Role) -> (String, String) {
    let name = format!("{stack}-{}-X1", role.role_id());
    let arn = match role {
        Role::DashboardOrgReader => format!("arn:aws:iam::{ACCOUNT}:role/{stack}/{name}"),
        _ => format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
    };
    (name, arn)
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{0}: {1}")]
    Policy(String, super::policy::PolicyError),
}

fn template() -> Result<&'static Template, BindError> {
    static TEMPLATE: std::sync::OnceLock<Result<Template, String>> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| Template::main().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| BindError::Template(TemplateError::Read(e.clone())))
}

fn parse(what: &str, doc: &serde_json::Value) -> Result<Policy, BindError> {
    Policy::parse(doc).map_err(|e| BindError::Policy(what.to_string(), e))
}

impl StackBinding {
    /// Resolves the template for `res` deployed as `shape`.
    pub fn new(res: &Resources, shape: Shape) -> Result<Arc<Self>, BindError> {
        let t = template()?;
        let names = stack_names(res, shape);
        let mut roles = BTreeMap::new();
        for role in Role::ALL {
            let docs = match role {
                Role::Operator => t
                    .resolve(
                        &names,
                        &[
                            "Resources",
                            "OperatorPolicy",
                            "Properties",
                            "PolicyDocument",
                        ],
                    )?
                    .map(|d| vec![d]),
                _ => t.role_policies(&names, role.logical_id())?,
            };
            let Some(docs) = docs else {
                continue;
            };
            let policies = docs
                .iter()
                .map(|d| parse(role.logical_id(), d))
                .collect::<Result<Vec<_>, _>>()?;
            let trust = match role {
                Role::DashboardOrgReader => t
                    .trust_policy(&names, role.logical_id())?
                    .map(|d| parse("DashboardOrgReaderRole trust", &d))
                    .transpose()?,
                _ => None,
            };
            let (name, arn) = role_name_arn(&res.stack_name, role);
            roles.insert(
                role,
                RoleEntry {
                    arn,
                    name,
                    policies,
                    trust,
                },
            );
        }
        let attr = |k: &str| names.attributes.get(k).cloned().unwrap_or_default();
        let mut keys = BTreeMap::new();
        for key in ["DataKey", "TokenKey", "QueueKey"] {
            if let Some(doc) = t.key_policy(&names, key)? {
                keys.insert(attr(&format!("{key}.Arn")), parse(key, &doc)?);
            }
        }
        let table_keys = BTreeMap::from([
            (res.token_table.clone(), attr("TokenKey.Arn")),
            (res.analytics_table.clone(), attr("DataKey.Arn")),
            (res.tenant_table.clone(), attr("DataKey.Arn")),
        ]);
        let mut queue_keys = BTreeMap::new();
        let mut queue_policies = BTreeMap::new();
        for (id, url) in [
            ("DeadLetterQueue", &res.dead_letter_queue_url),
            ("EventQueue", &res.event_queue_url),
        ] {
            let arn = queue_arn(url);
            queue_keys.insert(arn.clone(), attr("QueueKey.Arn"));
            if let Some(doc) = t.queue_policy(&names, id)? {
                queue_policies.insert(arn, parse(id, &doc)?);
            }
        }
        let secret_key = shape
            .secret_key
            .then(|| key_arn(&res.stack_name, "SecretKey"));
        if let Some(k) = &secret_key {
            // A key made by the deployer for its secrets: the account
            // administers and IAM policies decide (KMS "Default key policy").
            let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "AccountAdministers", "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
                "Action": "kms:*", "Resource": "*"}]});
            keys.insert(k.clone(), parse("secret key", &doc)?);
        }
        Ok(Arc::new(Self {
            names,
            shape,
            roles: RwLock::new(roles),
            keys,
            table_keys,
            queue_keys,
            queue_policies,
            secret_key,
            denials: Mutex::default(),
        }))
    }

    /// The role's entry, if the stack has it.
    pub fn role(&self, role: Role) -> Option<RoleEntry> {
        self.roles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&role)
            .cloned()
    }

    /// Replaces a role's identity policies (the least-privilege check).
    pub fn set_policies(&self, role: Role, policies: Vec<Policy>) {
        if let Some(r) = self
            .roles
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&role)
        {
            r.policies = policies;
        }
    }

    /// The principal of a session of `role` named `session`.
    pub fn principal(
        &self,
        role: Role,
        session: &str,
        tags: BTreeMap<String, String>,
    ) -> Principal {
        let entry = self.role(role);
        let (name, arn) = entry
            .map(|e| (e.name, e.arn))
            .unwrap_or_else(|| role_name_arn(&self.names.stack_name, role));
        Principal::Role {
            account: ACCOUNT.into(),
            role_arn: arn,
            session_arn: format!("arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{session}"),
            tags,
        }
    }

    /// The role an ARN names, if it is one of this stack's.
    pub fn role_by_arn(&self, arn: &str) -> Option<Role> {
        self.roles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(_, e)| e.arn == arn)
            .map(|(r, _)| *r)
    }

    pub fn record(&self, denial: Denial) {
        self.denials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(denial);
    }

    /// Every call refused so far.
    pub fn denials(&self) -> Vec<Denial> {
        self.denials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets the denials recorded so far.
    pub fn clear_denials(&self) {
        self.denials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
