//! The DynamoDB token item: one per slot, both the fleet's lock (lease and
//! fencing version) and its shared cache. docs/DESIGN.md, "The token
//! protocol", says why each attribute exists.
//!
//! Every expression names attributes through `#placeholders` bound to the
//! constants in [`attr`], so a renamed attribute cannot be missed in one of them.
#![warn(missing_docs)]

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use lambda_support::Redacted;

pub mod tenants;

/// Attribute names of a token item.
pub mod attr {
    /// Partition key, `token#<SHA-256 of the identity, hex>#<slot>`.
    pub const PK: &str = "pk";
    /// Whose item it is: the identity its key was derived from (the OAuth
    /// client's secret id, or `org#secret ARN`). Checked by [`TokenStore::read`],
    /// acquire and mark-stale, so an item is never served to, or taken over
    /// by, another. Not a health attribute: the dashboard never sees it.
    pub const IDENTITY: &str = "identity";
    /// The bearer token. Never read by the dashboard.
    pub const ACCESS_TOKEN: &str = "access_token";
    /// `token_type` as issued.
    pub const TOKEN_TYPE: &str = "token_type";
    /// Epoch ms.
    pub const EXPIRES_AT: &str = "expires_at";
    /// The fencing counter.
    pub const VERSION: &str = "version";
    /// Who holds the lease.
    pub const LEASE_OWNER: &str = "lease_owner";
    /// Until when (epoch ms).
    pub const LEASE_UNTIL: &str = "lease_until";
    /// A version some reader got a 401 for.
    pub const STALE_VERSION: &str = "stale_version";
    /// Consecutive failed fetches (shared backoff).
    pub const FAILURES: &str = "failures";
    /// No fetch before this (epoch ms).
    pub const NEXT_ATTEMPT_AT: &str = "next_attempt_at";
    /// The last fetch error, for operators (may name the secret's ARN).
    pub const LAST_ERROR: &str = "last_error";
    /// The last fetch error's kind (`credentials_rejected`, `rate_limited`,
    /// `unavailable`): what a health view shows instead of the text.
    pub const LAST_ERROR_CODE: &str = "last_error_code";
    /// When the current token was published (epoch ms).
    pub const REFRESHED_AT: &str = "refreshed_at";
    /// When the current token is due for replacement (epoch ms), set by its
    /// publisher from the token's lifetime.
    pub const REFRESH_AT: &str = "refresh_at";
    /// DynamoDB TTL (epoch seconds), cleanup only.
    pub const TTL: &str = "ttl";
    /// What a health view may read: no token, no error text (it may name
    /// the secret or a role), no lease owner. The template's IAM
    /// `dynamodb:Attributes` condition for the dashboard lists exactly these.
    pub const HEALTH: [&str; 10] = [
        PK,
        EXPIRES_AT,
        REFRESH_AT,
        VERSION,
        LEASE_UNTIL,
        STALE_VERSION,
        FAILURES,
        NEXT_ATTEMPT_AT,
        LAST_ERROR_CODE,
        REFRESHED_AT,
    ];
}

type Item = HashMap<String, AttributeValue>;

/// One slot's item as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenItem {
    /// The token; `None` before the first publish (or in a health read).
    pub token: Option<Redacted>,
    /// Epoch ms.
    pub expires_at: i64,
    /// The fencing counter: +1 on every published token; 0 before the first.
    pub version: u64,
    /// Who holds the lease, if anyone.
    pub lease_owner: Option<String>,
    /// Until when the lease holds (epoch ms).
    pub lease_until: Option<i64>,
    /// A reader got a 401 for this version.
    pub stale_version: Option<u64>,
    /// Consecutive failed fetches.
    pub failures: u32,
    /// The shared backoff: no fetch before this (epoch ms).
    pub next_attempt_at: Option<i64>,
    /// The last fetch error.
    pub last_error: Option<String>,
    /// The last fetch error's kind.
    pub last_error_code: Option<String>,
    /// When the current token was published (epoch ms).
    pub refreshed_at: Option<i64>,
    /// When the current token is due for replacement (epoch ms); absent on
    /// items published before it existed.
    pub refresh_at: Option<i64>,
}

impl TokenItem {
    /// A token that can be handed out: present, not marked stale, and not
    /// expiring within `skew_ms`.
    pub fn usable(&self, now: i64, skew_ms: i64) -> bool {
        self.token.is_some()
            && self.expires_at.saturating_sub(skew_ms) > now
            && self.stale_version != Some(self.version)
    }

    /// Someone holds an unexpired lease.
    pub fn lease_live(&self, now: i64) -> bool {
        self.lease_until.is_some_and(|u| u >= now)
    }

    fn from_item(item: &Item) -> Self {
        let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        let n = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        let unsigned = |k: &str| n(k).map(|v| u64::try_from(v).unwrap_or(0));
        Self {
            token: s(attr::ACCESS_TOKEN).map(Redacted::new),
            expires_at: n(attr::EXPIRES_AT).unwrap_or(0),
            version: unsigned(attr::VERSION).unwrap_or(0),
            lease_owner: s(attr::LEASE_OWNER),
            lease_until: n(attr::LEASE_UNTIL),
            stale_version: unsigned(attr::STALE_VERSION),
            failures: n(attr::FAILURES)
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
            next_attempt_at: n(attr::NEXT_ATTEMPT_AT),
            last_error: s(attr::LAST_ERROR),
            last_error_code: s(attr::LAST_ERROR_CODE),
            refreshed_at: n(attr::REFRESHED_AT),
            refresh_at: n(attr::REFRESH_AT),
        }
    }

    /// The token is due for replacement: its `refresh_at` has come (or, on
    /// an item without one, it expires within `fallback_margin_ms`).
    pub fn due(&self, now: i64, fallback_margin_ms: i64) -> bool {
        match self.refresh_at {
            Some(at) => at <= now || self.expires_at.saturating_sub(60_000) < now,
            None => self.expires_at.saturating_sub(fallback_margin_ms) <= now,
        }
    }
}

/// A held lease: the right to fetch and publish one token for a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The slot.
    pub slot: usize,
    /// This holder's unique id (the fencing condition).
    pub owner: String,
    /// Epoch ms.
    pub until: i64,
    /// The item's failure count when the lease was taken.
    pub failures: u32,
}

/// Outcome of an acquire attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Acquire {
    /// This caller holds the lease.
    Won(Lease),
    /// The condition failed: no refresh needed, a live lease, or the backoff.
    Lost,
}

/// A token to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken<'a> {
    /// The bearer token.
    pub access_token: &'a Redacted,
    /// As issued.
    pub token_type: &'a str,
    /// Epoch ms.
    pub expires_at: i64,
    /// When it is due for replacement (epoch ms).
    pub refresh_at: i64,
}

/// A token store operation that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The slot's item carries another identity (or none): written by hand
    /// or by something else. Never served, never overwritten.
    #[error(
        "token item {key} in table {table} belongs to another OAuth client or org; refusing to serve or replace it (delete the item if it is stray)"
    )]
    ForeignItem {
        /// The item's partition key.
        key: String,
        /// The table.
        table: String,
    },
    /// Another writer took the lease over: this one must not publish.
    #[error("the lease on token slot {slot} was lost before publishing (another writer took over)")]
    LeaseLost {
        /// The slot.
        slot: usize,
    },
    /// DynamoDB failed (throttling, 5xx, permissions).
    #[error("DynamoDB {op} on table {table} failed: {reason}")]
    DynamoDb {
        /// The operation.
        op: &'static str,
        /// The table.
        table: String,
        /// The SDK's error chain.
        reason: String,
    },
}

/// The token items of one OAuth client in one table.
#[derive(Debug, Clone)]
pub struct TokenStore {
    client: Client,
    table: String,
    identity: String,
    key_prefix: String,
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// SHA-256, hex: names an identity's items without naming its secret, and
/// two identities can never share a key.
pub fn key_digest(identity: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, identity.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Stable FNV-1a hash: spreads conversations over slots. Not for keys.
pub fn hash64(input: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A DynamoDB failure of `op` on `table`, with the SDK's error chain.
fn dynamo_err<E, R>(table: &str, op: &'static str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::DynamoDb {
        op,
        table: table.to_string(),
        reason: DisplayErrorContext(e).to_string(),
    }
}

/// Whether DynamoDB refused a write because its condition did not hold
/// (any operation's `ConditionalCheckFailedException`).
pub fn conditional_check_failed<E, R>(e: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// The attributes [`TokenStore::try_acquire`]'s expressions name.
const ACQUIRE_ATTRS: &[&str] = &[
    attr::LEASE_OWNER,
    attr::LEASE_UNTIL,
    attr::VERSION,
    attr::ACCESS_TOKEN,
    attr::EXPIRES_AT,
    attr::REFRESH_AT,
    attr::STALE_VERSION,
    attr::NEXT_ATTEMPT_AT,
    attr::PK,
    attr::IDENTITY,
];

/// The lease is taken only when a refresh is needed (no token, its
/// `refresh_at` come, within a minute of expiry, or marked stale), nobody
/// holds a live lease, and the shared backoff allows it; and never on an
/// item of another client (`identity`).
const ACQUIRE_CONDITION: &str = "(attribute_not_exists(#pk) OR #identity = :identity) \
                 AND (attribute_not_exists(#version) OR attribute_not_exists(#access_token) \
                   OR #refresh_at <= :now OR #expires_at < :refresh_soon \
                   OR (attribute_not_exists(#refresh_at) AND #expires_at < :refresh_before) \
                   OR #stale_version = #version) \
                 AND (attribute_not_exists(#lease_until) OR #lease_until < :now) \
                 AND (attribute_not_exists(#next_attempt_at) OR #next_attempt_at <= :now)";

/// The attributes [`TokenStore::publish`]'s expressions name.
const PUBLISH_ATTRS: &[&str] = &[
    attr::ACCESS_TOKEN,
    attr::TOKEN_TYPE,
    attr::EXPIRES_AT,
    attr::REFRESH_AT,
    attr::VERSION,
    attr::REFRESHED_AT,
    attr::FAILURES,
    attr::TTL,
    attr::LEASE_OWNER,
    attr::LEASE_UNTIL,
    attr::NEXT_ATTEMPT_AT,
    attr::LAST_ERROR,
    attr::LAST_ERROR_CODE,
    attr::STALE_VERSION,
];

/// A new token as the next version, with the lease, backoff and staleness
/// cleared.
const PUBLISH_UPDATE: &str = "SET #access_token = :t, #token_type = :tt, #expires_at = :exp, #refresh_at = :due, \
                 #version = if_not_exists(#version, :zero) + :one, \
                 #refreshed_at = :now, #failures = :zero, #ttl = :ttl \
                 REMOVE #lease_owner, #lease_until, #next_attempt_at, #last_error, #last_error_code, #stale_version";

impl TokenStore {
    /// `identity` names the OAuth client (we use the secret's id, so readers
    /// never need the secret to find the token).
    pub fn new(client: Client, table: impl Into<String>, identity: &str) -> Self {
        Self {
            client,
            table: table.into(),
            identity: identity.to_string(),
            key_prefix: format!("token#{}", key_digest(identity)),
        }
    }

    /// The same table (and client) for another OAuth client's items.
    pub fn for_identity(&self, identity: &str) -> Self {
        Self::new(self.client.clone(), self.table.clone(), identity)
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The slot's partition key.
    pub fn key(&self, slot: usize) -> String {
        format!("{}#{slot}", self.key_prefix)
    }

    fn err<E, R>(&self, op: &'static str, e: SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        dynamo_err(&self.table, op, e)
    }

    /// An UpdateItem on the slot with every attribute name bound to its
    /// placeholder (`#version` for [`attr::VERSION`], and so on).
    fn update(&self, slot: usize, names: &[&str]) -> UpdateItemFluentBuilder {
        names.iter().fold(
            self.client
                .update_item()
                .table_name(&self.table)
                .key(attr::PK, s(self.key(slot))),
            |b, name| b.expression_attribute_names(format!("#{name}"), *name),
        )
    }

    /// Strongly consistent read of one slot.
    pub async fn read(&self, slot: usize) -> Result<Option<TokenItem>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::PK, s(self.key(slot)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err("GetItem", e))?;
        match out.item() {
            None => Ok(None),
            Some(item) if self.owns(item) => Ok(Some(TokenItem::from_item(item))),
            Some(_) => Err(StoreError::ForeignItem {
                key: self.key(slot),
                table: self.table.clone(),
            }),
        }
    }

    /// Whether `item` carries this store's identity.
    fn owns(&self, item: &Item) -> bool {
        item.get(attr::IDENTITY)
            .and_then(|v| v.as_s().ok())
            .is_some_and(|id| *id == self.identity)
    }

    /// One slot without its token: only the [`attr::HEALTH`] attributes are
    /// read, so a caller allowed only those (IAM `dynamodb:Attributes`) can
    /// use it. Eventually consistent: health, not protocol.
    pub async fn read_health(&self, slot: usize) -> Result<Option<TokenItem>, StoreError> {
        let projection = attr::HEALTH
            .iter()
            .map(|a| format!("#{a}"))
            .collect::<Vec<_>>()
            .join(", ");
        let out = attr::HEALTH
            .iter()
            .fold(
                self.client
                    .get_item()
                    .table_name(&self.table)
                    .key(attr::PK, s(self.key(slot)))
                    .projection_expression(projection),
                |b, a| b.expression_attribute_names(format!("#{a}"), *a),
            )
            .send()
            .await
            .map_err(|e| self.err("GetItem (health)", e))?;
        Ok(out.item().map(TokenItem::from_item))
    }

    /// One UpdateItem: take the lease if a refresh is needed (no token, its
    /// `refresh_at` come, or on an item without one expiring before
    /// `refresh_before`, or marked stale) and nobody holds a live lease
    /// and the shared backoff allows it.
    pub async fn try_acquire(
        &self,
        slot: usize,
        owner: &str,
        now: i64,
        refresh_before: i64,
        lease_ms: i64,
    ) -> Result<Acquire, StoreError> {
        let until = now.saturating_add(lease_ms);
        let r = self
            .update(slot, ACQUIRE_ATTRS)
            .update_expression(
                "SET #lease_owner = :me, #lease_until = :until, #identity = :identity",
            )
            .condition_expression(ACQUIRE_CONDITION)
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":identity", s(self.identity.clone()))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":refresh_before", n(refresh_before))
            // Whatever `refresh_at` says, a token within a minute of expiry
            // is replaceable (an item from an older publisher, a clock step).
            .expression_attribute_values(":refresh_soon", n(now.saturating_add(60_000)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match r {
            Ok(out) => {
                let item = out
                    .attributes()
                    .map(TokenItem::from_item)
                    .unwrap_or_default();
                Ok(Acquire::Won(Lease {
                    slot,
                    owner: owner.to_string(),
                    until,
                    failures: item.failures,
                }))
            }
            Err(e) if conditional_check_failed(&e) => Ok(Acquire::Lost),
            Err(e) => Err(self.err("UpdateItem (acquire)", e)),
        }
    }

    /// Publishes a new token as `version + 1`, clearing the lease and backoff;
    /// refused unless `lease` is still ours (fencing). Returns the new version.
    pub async fn publish(
        &self,
        lease: &Lease,
        token: NewToken<'_>,
        now: i64,
    ) -> Result<u64, StoreError> {
        let r = self
            .update(lease.slot, PUBLISH_ATTRS)
            .update_expression(PUBLISH_UPDATE)
            .condition_expression("#lease_owner = :me")
            .expression_attribute_values(":t", s(token.access_token.expose()))
            .expression_attribute_values(":tt", s(token.token_type))
            .expression_attribute_values(":exp", n(token.expires_at))
            .expression_attribute_values(":due", n(token.refresh_at))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":ttl", n(token.expires_at / 1000 + 86_400))
            .expression_attribute_values(":me", s(lease.owner.clone()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match r {
            Ok(out) => out
                .attributes()
                .and_then(|a| a.get(attr::VERSION))
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| StoreError::DynamoDb {
                    op: "UpdateItem (publish)",
                    table: self.table.clone(),
                    reason: "the answer has no version".into(),
                }),
            Err(e) if conditional_check_failed(&e) => {
                Err(StoreError::LeaseLost { slot: lease.slot })
            }
            Err(e) => Err(self.err("UpdateItem (publish)", e)),
        }
    }

    /// Deletes the slot's item, token and all (offboarding an org: no token
    /// of its client stays behind). Deleting a missing item is not an error.
    pub async fn delete(&self, slot: usize) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(attr::PK, s(self.key(slot)))
            .send()
            .await
            .map_err(|e| self.err("DeleteItem (offboard)", e))?;
        Ok(())
    }

    /// Releases the lease without counting a failure: the holder ran out of
    /// its caller's time, which says nothing about the token endpoint.
    pub async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        let r = self
            .update(lease.slot, &[attr::LEASE_OWNER, attr::LEASE_UNTIL])
            .update_expression("REMOVE #lease_owner, #lease_until")
            .condition_expression("#lease_owner = :me")
            .expression_attribute_values(":me", s(lease.owner.clone()))
            .send()
            .await;
        self.released(lease, r)
    }

    /// The answer to an update conditioned on holding `lease`.
    fn released<T>(
        &self,
        lease: &Lease,
        r: Result<T, SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError>>,
    ) -> Result<(), StoreError> {
        match r {
            Ok(_) => Ok(()),
            Err(e) if conditional_check_failed(&e) => {
                Err(StoreError::LeaseLost { slot: lease.slot })
            }
            Err(e) => Err(self.err("UpdateItem (release)", e)),
        }
    }

    /// Releases the lease after a failed fetch and records the shared backoff.
    pub async fn record_failure(
        &self,
        lease: &Lease,
        next_attempt_at: i64,
        code: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        let r = self
            .update(
                lease.slot,
                &[
                    attr::FAILURES,
                    attr::NEXT_ATTEMPT_AT,
                    attr::LAST_ERROR,
                    attr::LAST_ERROR_CODE,
                    attr::LEASE_OWNER,
                    attr::LEASE_UNTIL,
                ],
            )
            .update_expression(
                "SET #failures = :f, #next_attempt_at = :next, #last_error = :err, #last_error_code = :code \
                 REMOVE #lease_owner, #lease_until",
            )
            .condition_expression("#lease_owner = :me")
            .expression_attribute_values(":f", n(lease.failures.saturating_add(1)))
            .expression_attribute_values(":next", n(next_attempt_at))
            .expression_attribute_values(":err", s(error.chars().take(500).collect::<String>()))
            .expression_attribute_values(":code", s(code.to_string()))
            .expression_attribute_values(":me", s(lease.owner.clone()))
            .send()
            .await;
        self.released(lease, r)
    }

    /// Marks `version` as rejected by Genesys, only if it is still current.
    /// Returns whether this call marked it.
    pub async fn mark_stale(&self, slot: usize, version: u64) -> Result<bool, StoreError> {
        let r = self
            .update(slot, &[attr::STALE_VERSION, attr::VERSION, attr::IDENTITY])
            .update_expression("SET #stale_version = :v")
            .condition_expression("#version = :v AND #identity = :identity")
            .expression_attribute_values(":v", n(version))
            .expression_attribute_values(":identity", s(self.identity.clone()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if conditional_check_failed(&e) => Ok(false),
            Err(e) => Err(self.err("UpdateItem (mark stale)", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn an_item_reads_back_and_bad_numbers_fall_back() {
        let i = TokenItem::from_item(&item(&[
            (attr::ACCESS_TOKEN, s("secret-token")),
            (attr::EXPIRES_AT, n(5_000)),
            (attr::VERSION, n(-3)),
            (attr::FAILURES, n(u64::MAX)),
            (attr::STALE_VERSION, n(2)),
        ]));
        assert_eq!(i.version, 0);
        assert_eq!(i.failures, 0);
        assert_eq!(i.stale_version, Some(2));
        assert!(i.usable(1_000, 1_000));
        assert!(!i.usable(4_500, 1_000), "inside the skew");
        assert!(!format!("{i:?}").contains("secret-token"));
    }

    #[test]
    fn a_stale_version_is_not_usable_and_leases_expire() {
        let mut i = TokenItem {
            token: Some(Redacted::new("t")),
            expires_at: i64::MAX,
            version: 4,
            stale_version: Some(4),
            ..TokenItem::default()
        };
        assert!(!i.usable(0, 0));
        i.stale_version = Some(3);
        assert!(i.usable(0, 0));
        i.lease_owner = Some("me".into());
        i.lease_until = Some(100);
        assert!(i.lease_live(100));
        assert!(!i.lease_live(101));
    }

    #[test]
    fn the_health_projection_never_names_the_token() {
        assert!(!attr::HEALTH.contains(&attr::ACCESS_TOKEN));
        assert!(!attr::HEALTH.contains(&attr::TOKEN_TYPE));
    }

    #[test]
    fn key_digest_is_sha256_hex() {
        // FIPS 180-2's "abc" vector.
        assert_eq!(
            key_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(key_digest("org-1#arn"), key_digest("org-2#arn"));
        assert_eq!(hash64(""), 0xcbf2_9ce4_8422_2325);
    }
}
