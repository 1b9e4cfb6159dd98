//! Names admission (a flow's names a day are capped) and flow names.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use super::pages::Read;
use super::{AnalyticsError, AnalyticsStore, MARKER_TTL_S, ReadStats, key};
use crate::kpi::{MAX_NAMES_PER_FLOW_DAY, NameKind, OTHER_NAME, Plan};
use crate::org_items::ORG_SHARD;

/// Names this container knows the answer for: (kind, flow, day) -> name ->
/// admitted.
pub(super) type NameCache = HashMap<(NameKind, String, i64), HashMap<String, bool>>;

impl AnalyticsStore {
    /// Sends every name `plan` counts that its flow's registry for the day
    /// cannot take (full at [`MAX_NAMES_PER_FLOW_DAY`], or longer than
    /// [`va_events::MAX_NAME_BYTES`]) to [`OTHER_NAME`]. One conditional
    /// write per name new to this container; none once it is known.
    pub async fn admit_names(&self, plan: &mut Plan) -> Result<(), AnalyticsError> {
        for (kind, flow, minute, name) in plan.names() {
            let day = minute.div_euclid(86_400_000);
            let ok = name.len() <= va_events::MAX_NAME_BYTES
                && self.admit(kind, &flow, day, &name).await?;
            if !ok {
                plan.rename(kind, &name, OTHER_NAME);
            }
        }
        Ok(())
    }

    async fn admit(
        &self,
        kind: NameKind,
        flow: &str,
        day: i64,
        name: &str,
    ) -> Result<bool, AnalyticsError> {
        // The cache is shared by every org of the container: keyed by the item.
        let slot = (kind, self.names_key(flow, day).0, day);
        if let Some(known) = self
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&slot)
            .and_then(|m| m.get(name).copied())
        {
            return Ok(known);
        }
        let admitted = self.add_name(kind, flow, day, name).await?;
        let mut cache = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache
            .entry(slot)
            .or_default()
            .insert(name.to_string(), admitted);
        Ok(admitted)
    }

    /// Adds `name` to the registry unless it is full: `false` when full.
    async fn add_name(
        &self,
        kind: NameKind,
        flow: &str,
        day: i64,
        name: &str,
    ) -> Result<bool, AnalyticsError> {
        let (pk, sk) = self.names_key(flow, day);
        let (expr, tag) = self.tagged(&pk, "ADD #set :one SET #ttl = :ttl");
        let update = match tag {
            Some(t) => self
                .client
                .update_item()
                .expression_attribute_names("#org_shard", ORG_SHARD)
                .expression_attribute_values(":org_shard", t),
            None => self.client.update_item(),
        };
        let ttl = day
            .saturating_add(MARKER_TTL_S / 86_400 + 2)
            .saturating_mul(86_400);
        let r = update
            .table_name(&self.table)
            .key(key::PK, AttributeValue::S(pk))
            .key(key::SK, AttributeValue::S(sk))
            .update_expression(expr)
            .condition_expression(
                "attribute_not_exists(#set) OR size(#set) < :cap OR contains(#set, :name)",
            )
            .expression_attribute_names("#set", kind.attribute())
            .expression_attribute_names("#ttl", key::TTL)
            .expression_attribute_values(":one", AttributeValue::Ss(vec![name.to_string()]))
            .expression_attribute_values(":name", AttributeValue::S(name.to_string()))
            .expression_attribute_values(
                ":cap",
                AttributeValue::N(MAX_NAMES_PER_FLOW_DAY.to_string()),
            )
            .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string()))
            .send()
            .await;
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError as E;
        match r {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(E::ConditionalCheckFailedException(_)) => Ok(false),
                Some(
                    E::ProvisionedThroughputExceededException(_)
                    | E::RequestLimitExceeded(_)
                    | E::TransactionConflictException(_),
                ) => Err(AnalyticsError::Throttled {
                    reason: DisplayErrorContext(e).to_string(),
                }),
                _ => Err(self.dynamodb("UpdateItem (names)", DisplayErrorContext(e))),
            },
        }
    }

    /// Flow names the sweeper resolved, by flow id: one `Query`.
    pub async fn flow_names(
        &self,
    ) -> Result<(BTreeMap<String, String>, ReadStats), AnalyticsError> {
        let mut names = BTreeMap::new();
        let pk = self.flows_pk();
        let stats = self
            .each_item(
                "Query (flow names)",
                &pk,
                "#sk >= :from",
                &[(":from", "0".to_string())],
                Read::default(),
                |item| {
                    if let (Some(id), Some(name)) = (
                        item.get(key::SK).and_then(|v| v.as_s().ok()),
                        item.get(key::NAME).and_then(|v| v.as_s().ok()),
                    ) {
                        names.insert(id.clone(), name.clone());
                    }
                    true
                },
            )
            .await?;
        Ok((names, stats))
    }

    /// Records a flow's name (from `GET /api/v2/flows/{flowId}`).
    pub async fn put_flow_name(
        &self,
        flow_id: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<(), AnalyticsError> {
        let pk = self.flows_pk();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(self.tagged_item(&pk))
            .item(key::PK, AttributeValue::S(pk))
            .item(key::SK, AttributeValue::S(flow_id.to_string()))
            .item(key::NAME, AttributeValue::S(name.to_string()))
            .item(key::AT, AttributeValue::N(now_ms.to_string()))
            .send()
            .await
            .map_err(|e| self.dynamodb("PutItem (flow name)", DisplayErrorContext(e)))?;
        Ok(())
    }
}
