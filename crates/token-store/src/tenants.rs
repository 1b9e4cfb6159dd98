//! The tenant registry: one item per Genesys Cloud org this deployment
//! serves (`tenant#<orgId>` in the tenant table). It names the org's region
//! and the ARN of its client-credentials secret, never a secret.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::{StoreError, conditional_check_failed, dynamo_err};

/// The environment variable that turns a deployment multi-org: the table
/// holding the tenant registry (the template's `TenantTable`). Unset, a
/// deployment serves one implicit org with the keys of the first version.
pub const TENANTS_TABLE: &str = "TENANTS_TABLE";

/// Every attribute of a tenant item: reads name them (a
/// `ProjectionExpression`), so a role may be limited to them with
/// `dynamodb:Attributes` (the dashboard's and the handler's are).
pub const ATTRIBUTES: [&str; 9] = [
    "pk",
    "org_id",
    "region",
    "secret_arn",
    "pool_size",
    "enabled",
    "display_name",
    "base_url",
    "offboarded",
];

/// Key prefix of tenant items.
pub const TENANT_PREFIX: &str = "tenant#";

/// One org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// The Genesys Cloud organization id (a UUID).
    pub org_id: String,
    /// Its Genesys Cloud region (`us-east-1`, `eu-west-1`, ...).
    pub region: String,
    /// The Secrets Manager secret holding its `{"clientId","clientSecret"}`.
    pub secret_arn: String,
    /// Token slots for this org.
    pub pool_size: usize,
    /// Whether its events are counted and its tokens refreshed.
    pub enabled: bool,
    /// A name for people.
    pub display_name: String,
    /// One base URL for its login and API hosts instead of the region's
    /// (tests and local runs: the simulator).
    pub base_url: Option<String>,
    /// Offboarded (`va-admin org offboard`): its rule is disabled and its
    /// items purged; an event still in flight is dropped, not dead-lettered.
    /// Never enabled.
    pub offboarded: bool,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// [`ATTRIBUTES`] as a projection, `#a0, #a1, ...` (`#a0` is `pk`).
fn projection() -> String {
    (0..ATTRIBUTES.len())
        .map(|i| format!("#a{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The projection's placeholders.
fn projection_names() -> std::collections::HashMap<String, String> {
    ATTRIBUTES
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("#a{i}"), a.to_string()))
        .collect()
}

/// The key of an org's item.
fn key(org_id: &str) -> AttributeValue {
    s(format!("{TENANT_PREFIX}{org_id}"))
}

impl Tenant {
    /// What names this org's token items (see [`crate::TokenStore::new`]):
    /// the org and its secret, so two orgs never share a slot and a new
    /// secret starts new slots.
    pub fn token_identity(&self) -> String {
        format!("{}#{}", self.org_id, self.secret_arn)
    }

    fn item(&self) -> std::collections::HashMap<String, AttributeValue> {
        let mut m = std::collections::HashMap::from([
            ("pk".to_string(), key(&self.org_id)),
            ("org_id".to_string(), s(&self.org_id)),
            ("region".to_string(), s(&self.region)),
            ("secret_arn".to_string(), s(&self.secret_arn)),
            (
                "pool_size".to_string(),
                AttributeValue::N(self.pool_size.to_string()),
            ),
            ("enabled".to_string(), AttributeValue::Bool(self.enabled)),
            ("display_name".to_string(), s(&self.display_name)),
        ]);
        if let Some(u) = &self.base_url {
            m.insert("base_url".to_string(), s(u));
        }
        if self.offboarded {
            m.insert("offboarded".to_string(), AttributeValue::Bool(true));
        }
        m
    }

    fn from_item(item: &std::collections::HashMap<String, AttributeValue>) -> Option<Self> {
        let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        Some(Self {
            org_id: text("org_id")?,
            region: text("region").unwrap_or_default(),
            secret_arn: text("secret_arn")?,
            pool_size: item
                .get("pool_size")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
            enabled: item
                .get("enabled")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
            display_name: text("display_name").unwrap_or_default(),
            base_url: text("base_url"),
            offboarded: item
                .get("offboarded")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        })
    }
}

/// The registry in its table.
#[derive(Debug, Clone)]
pub struct TenantRegistry {
    client: Client,
    table: String,
}

impl TenantRegistry {
    /// The registry in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn err<E, R>(&self, op: &'static str, e: aws_sdk_dynamodb::error::SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        dynamo_err(&self.table, op, e)
    }

    /// Writes `tenant` (a new org, or every field of a known one).
    pub async fn put(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(tenant.item()))
            .send()
            .await
            .map_err(|e| self.err("PutItem (tenant)", e))?;
        Ok(())
    }

    /// One org.
    pub async fn get(&self, org_id: &str) -> Result<Option<Tenant>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", key(org_id))
            .projection_expression(projection())
            .set_expression_attribute_names(Some(projection_names()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err("GetItem (tenant)", e))?;
        Ok(out.item().and_then(Tenant::from_item))
    }

    /// Every org, enabled or not, by org id.
    pub async fn list(&self) -> Result<Vec<Tenant>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                // Only the registry's attributes (the dashboard may read no
                // others: IAM `dynamodb:Attributes`).
                .projection_expression(projection())
                .set_expression_attribute_names(Some(projection_names()))
                // Said outright, so IAM's `dynamodb:Select` condition sees it.
                .select(aws_sdk_dynamodb::types::Select::SpecificAttributes)
                .filter_expression("begins_with(#a0, :p)")
                .expression_attribute_values(":p", s(TENANT_PREFIX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.err("Scan (tenants)", e))?;
            out.extend(page.items().iter().filter_map(Tenant::from_item));
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.org_id.cmp(&b.org_id));
        Ok(out)
    }

    /// Enables or disables a known org; `false` when there is none.
    pub async fn set_enabled(&self, org_id: &str, enabled: bool) -> Result<bool, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(org_id))
            .update_expression("SET enabled = :e")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":e", AttributeValue::Bool(enabled))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if conditional_check_failed(&e) => Ok(false),
            Err(e) => Err(self.err("UpdateItem (tenant)", e)),
        }
    }

    /// Marks a known org offboarded (and disabled); `false` when there is
    /// none. Its item stays, so the events still in flight find it.
    pub async fn set_offboarded(&self, org_id: &str) -> Result<bool, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(org_id))
            .update_expression("SET enabled = :f, offboarded = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if conditional_check_failed(&e) => Ok(false),
            Err(e) => Err(self.err("UpdateItem (tenant offboarded)", e)),
        }
    }

    /// Removes an org's item (its token items expire on their own).
    pub async fn remove(&self, org_id: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", key(org_id))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| self.err("DeleteItem (tenant)", e))?;
        Ok(out.attributes().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_round_trips_through_its_item_and_holds_no_secret() {
        let t = Tenant {
            org_id: "7f3c1a52-0d4e-4f1b-9a63-2b8e5c9d0a11".into(),
            region: "eu-west-1".into(),
            secret_arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:org-a".into(),
            pool_size: 2,
            enabled: true,
            display_name: "Org A".into(),
            base_url: None,
            offboarded: false,
        };
        let item = t.item();
        let mut with_url = t.clone();
        with_url.base_url = Some("https://example.test".into());
        assert!(
            with_url
                .item()
                .keys()
                .all(|k| ATTRIBUTES.contains(&k.as_str()))
        );
        assert_eq!(
            item["pk"].as_s().ok().map(String::as_str),
            Some("tenant#7f3c1a52-0d4e-4f1b-9a63-2b8e5c9d0a11")
        );
        assert!(
            !item
                .keys()
                .any(|k| k.contains("secret") && k != "secret_arn")
        );
        assert_eq!(Tenant::from_item(&item), Some(t));
    }
}
