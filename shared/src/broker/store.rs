//! The DynamoDB token item: one per slot, both the fleet's lock (lease and
//! fencing version) and its shared cache. See "The token protocol" in
//! ../shared/DESIGN.md.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::token::{AccessToken, IssuedToken, Redacted};

type Item = HashMap<String, AttributeValue>;

/// One slot's item as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenItem {
    pub token: Option<AccessToken>,
    pub token_type: Option<String>,
    /// Epoch ms.
    pub expires_at: i64,
    /// The fencing counter: +1 on every published token; 0 before the first.
    pub version: u64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    /// A reader got a 401 for this version.
    pub stale_version: Option<u64>,
    pub failures: u32,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub refreshed_at: Option<i64>,
}

impl TokenItem {
    /// A token that can be handed out: present, not marked stale, and not
    /// expiring within `skew_ms`.
    pub fn usable(&self, now: i64, skew_ms: i64) -> bool {
        self.token.is_some()
            && self.expires_at - skew_ms > now
            && self.stale_version != Some(self.version)
    }

    pub fn lease_live(&self, now: i64) -> bool {
        self.lease_owner.is_some() && self.lease_until.is_some_and(|u| u >= now)
    }

    fn from_item(item: &Item) -> Self {
        let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        let n = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        Self {
            token: s("access_token").map(Redacted::new),
            token_type: s("token_type"),
            expires_at: n("expires_at").unwrap_or(0),
            version: n("version").unwrap_or(0).max(0) as u64,
            lease_owner: s("lease_owner"),
            lease_until: n("lease_until"),
            stale_version: n("stale_version").map(|v| v.max(0) as u64),
            failures: n("failures").unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
            next_attempt_at: n("next_attempt_at"),
            last_error: s("last_error"),
            refreshed_at: n("refreshed_at"),
        }
    }
}

/// A held lease: the right to fetch and publish one token for a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub slot: usize,
    pub owner: String,
    pub until: i64,
    /// The item's version when the lease was taken.
    pub version: u64,
    pub failures: u32,
}

/// Outcome of an acquire attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Acquire {
    Won(Lease),
    /// The condition failed; the item as it was (`None` if it did not exist).
    Lost(Option<TokenItem>),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the lease on token slot {slot} was lost before publishing (another writer took over)")]
    LeaseLost { slot: usize },
    #[error("DynamoDB {op} on table {table} failed: {reason}")]
    DynamoDb {
        op: &'static str,
        table: String,
        reason: String,
    },
}

/// The token items of one OAuth client in one table.
#[derive(Debug, Clone)]
pub struct TokenStore {
    client: Client,
    table: String,
    key_prefix: String,
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// Stable FNV-1a hash, hex; names the item without naming the secret.
pub fn key_hash(input: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl TokenStore {
    /// `identity` names the OAuth client (we use the secret's id, so readers
    /// never need the secret to find the token).
    pub fn new(client: Client, table: impl Into<String>, identity: &str) -> Self {
        Self {
            client,
            table: table.into(),
            key_prefix: format!("token#{}", key_hash(identity)),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn key(&self, slot: usize) -> String {
        format!("{}#{slot}", self.key_prefix)
    }

    fn err<E, R>(&self, op: &'static str, e: SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        StoreError::DynamoDb {
            op,
            table: self.table.clone(),
            reason: DisplayErrorContext(e).to_string(),
        }
    }

    /// Strongly consistent read of one slot.
    pub async fn read(&self, slot: usize) -> Result<Option<TokenItem>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(self.key(slot)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err("GetItem", e))?;
        Ok(out.item().map(TokenItem::from_item))
    }

    /// One UpdateItem: take the lease if a refresh is needed (no token, expiring
    /// before `refresh_before`, or marked stale) and nobody holds a live lease
    /// and the shared backoff allows it. A loser gets the item in the same round trip.
    pub async fn try_acquire(
        &self,
        slot: usize,
        owner: &str,
        now: i64,
        refresh_before: i64,
        lease_ms: i64,
    ) -> Result<Acquire, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(self.key(slot)))
            .update_expression("SET lease_owner = :me, lease_until = :until")
            .condition_expression(
                "(attribute_not_exists(#v) OR attribute_not_exists(access_token) OR expires_at < :refresh_before OR stale_version = #v) \
                 AND (attribute_not_exists(lease_until) OR lease_until < :now) \
                 AND (attribute_not_exists(next_attempt_at) OR next_attempt_at <= :now)",
            )
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":until", n(now + lease_ms))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":refresh_before", n(refresh_before))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match r {
            Ok(out) => {
                let item = out.attributes().map(TokenItem::from_item).unwrap_or_default();
                Ok(Acquire::Won(Lease {
                    slot,
                    owner: owner.to_string(),
                    until: now + lease_ms,
                    version: item.version,
                    failures: item.failures,
                }))
            }
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c)) => {
                    Ok(Acquire::Lost(c.item().map(TokenItem::from_item)))
                }
                _ => Err(self.err("UpdateItem (acquire)", e)),
            },
        }
    }

    /// Publishes a new token as `version + 1`, clearing the lease and backoff;
    /// refused unless `lease` is still ours (fencing). Returns the new version.
    pub async fn publish(
        &self,
        lease: &Lease,
        token: &IssuedToken,
        now: i64,
    ) -> Result<u64, StoreError> {
        let expires_at = now + (token.expires_in as i64) * 1000;
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(self.key(lease.slot)))
            .update_expression(
                "SET access_token = :t, token_type = :tt, expires_at = :exp, #v = if_not_exists(#v, :zero) + :one, \
                 refreshed_at = :now, failures = :zero, #ttl = :ttl \
                 REMOVE lease_owner, lease_until, next_attempt_at, last_error, stale_version",
            )
            .condition_expression("lease_owner = :me")
            .expression_attribute_names("#v", "version")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":t", s(token.access_token.expose()))
            .expression_attribute_values(":tt", s(token.token_type.clone()))
            .expression_attribute_values(":exp", n(expires_at))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":ttl", n(expires_at / 1000 + 86_400))
            .expression_attribute_values(":me", s(lease.owner.clone()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match r {
            Ok(out) => Ok(out
                .attributes()
                .and_then(|a| a.get("version"))
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(lease.version + 1)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::LeaseLost { slot: lease.slot })
            }
            Err(e) => Err(self.err("UpdateItem (publish)", e)),
        }
    }

    /// Releases the lease after a failed fetch and records the shared backoff.
    pub async fn record_failure(
        &self,
        lease: &Lease,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(self.key(lease.slot)))
            .update_expression(
                "SET failures = :f, next_attempt_at = :next, last_error = :err REMOVE lease_owner, lease_until",
            )
            .condition_expression("lease_owner = :me")
            .expression_attribute_values(":f", n(lease.failures.saturating_add(1)))
            .expression_attribute_values(":next", n(next_attempt_at))
            .expression_attribute_values(":err", s(error.chars().take(500).collect::<String>()))
            .expression_attribute_values(":me", s(lease.owner.clone()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::LeaseLost { slot: lease.slot })
            }
            Err(e) => Err(self.err("UpdateItem (release)", e)),
        }
    }

    /// Marks `version` as rejected by Genesys, only if it is still current.
    /// Returns whether this call marked it.
    pub async fn mark_stale(&self, slot: usize, version: u64) -> Result<bool, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(self.key(slot)))
            .update_expression("SET stale_version = :v")
            .condition_expression("#v = :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", n(version))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.err("UpdateItem (mark stale)", e)),
        }
    }
}
