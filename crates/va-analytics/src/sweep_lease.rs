//! One sweep at a time without reserved concurrency: a lease item in the
//! analytics table, taken with a conditional write for the length of one
//! invocation. The roll-up needs a single writer (two could interleave a
//! stale hour after a fresh one), and reserving concurrency fails on an
//! account with a small concurrency quota.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use token_store::conditional_check_failed;

use crate::store::{AnalyticsError, key};

/// The lease item's partition key (one per deployment, whatever the orgs).
pub const SWEEP_LEASE_PK: &str = "sweeper#lease";

/// The sweeper's lease on the analytics table.
#[derive(Debug, Clone)]
pub struct SweepLease {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl SweepLease {
    /// The lease in `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { client, table }
    }

    /// Runs `work` under the lease (taken for `holder` until `until_ms`),
    /// then gives it back; `Ok(None)` when another holder has it.
    pub async fn run<T>(
        &self,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
        work: impl std::future::Future<Output = T>,
    ) -> Result<Option<T>, AnalyticsError> {
        if !self.acquire(holder, now_ms, until_ms).await? {
            return Ok(None);
        }
        let done = work.await;
        if let Err(e) = self.release(holder).await {
            tracing::warn!(error = %e, "sweep lease not released; it expires at its end");
        }
        Ok(Some(done))
    }

    /// Takes the lease for `holder` until `until_ms` unless another holder
    /// has it past `now_ms`: `Ok(false)` means another sweep is running.
    pub async fn acquire(
        &self,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, AnalyticsError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(key::PK, AttributeValue::S(SWEEP_LEASE_PK.into()))
            .item(key::SK, AttributeValue::S("lease".into()))
            .item("holder", AttributeValue::S(holder.into()))
            .item("until", AttributeValue::N(until_ms.to_string()))
            .condition_expression("attribute_not_exists(#pk) OR #until < :now")
            .expression_attribute_names("#pk", key::PK)
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if conditional_check_failed(&e) => Ok(false),
            Err(e) => Err(self.error("PutItem (sweep lease)", e)),
        }
    }

    /// Gives the lease back if `holder` still has it.
    pub async fn release(&self, holder: &str) -> Result<(), AnalyticsError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(key::PK, AttributeValue::S(SWEEP_LEASE_PK.into()))
            .key(key::SK, AttributeValue::S("lease".into()))
            .condition_expression("holder = :me")
            .expression_attribute_values(":me", AttributeValue::S(holder.into()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            // Expired and taken by the next sweep: nothing to give back.
            Err(e) if conditional_check_failed(&e) => Ok(()),
            Err(e) => Err(self.error("DeleteItem (sweep lease)", e)),
        }
    }

    fn error<E>(&self, op: &'static str, e: aws_sdk_dynamodb::error::SdkError<E>) -> AnalyticsError
    where
        E: std::error::Error + 'static,
    {
        AnalyticsError::DynamoDb {
            op,
            table: self.table.clone(),
            reason: DisplayErrorContext(e).to_string(),
        }
    }
}
