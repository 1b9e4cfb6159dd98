//! Conversation states and the bot sessions waiting for enrichment.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use super::keys::STATE_SK;
use super::pages::Read;
use super::{AnalyticsError, AnalyticsStore, key};
use crate::kpi::{ConversationState, PendingEnrichment};

/// A conversation's state as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateRead {
    /// 0 when there is none yet.
    pub version: u64,
    /// The state (empty when none).
    pub state: ConversationState,
}

impl AnalyticsStore {
    /// A conversation's state and its version (0: none yet). Strongly
    /// consistent: the version guards the write that follows.
    pub async fn read_state(&self, conversation_id: &str) -> Result<StateRead, AnalyticsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(key::PK, AttributeValue::S(self.state_pk(conversation_id)))
            .key(key::SK, AttributeValue::S(STATE_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.dynamodb("GetItem (state)", DisplayErrorContext(e)))?;
        let Some(item) = out.item() else {
            return Ok(StateRead::default());
        };
        let version = item
            .get(key::VERSION)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let state = item
            .get(key::STATE)
            .and_then(|v| v.as_s().ok())
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        Ok(StateRead { version, state })
    }

    /// Bot sessions waiting for enrichment that ended at or before
    /// `ended_by_ms`, oldest first, at most `limit`: one `Query` (paged).
    pub async fn pending(
        &self,
        ended_by_ms: i64,
        limit: usize,
    ) -> Result<Vec<PendingEnrichment>, AnalyticsError> {
        let mut out = Vec::new();
        let pk = self.pending_pk();
        self.each_item(
            "Query (pending)",
            &pk,
            "#sk <= :to",
            &[(":to", format!("{:013}~", ended_by_ms.max(0)))],
            Read {
                page: Some(limit),
                ..Read::default()
            },
            |item| {
                if let Some(p) = item
                    .get(key::PENDING)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|s| serde_json::from_str(s).ok())
                {
                    out.push(p);
                }
                out.len() < limit
            },
        )
        .await?;
        Ok(out)
    }
}
