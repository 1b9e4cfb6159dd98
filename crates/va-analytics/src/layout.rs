//! Which layout the analytics table holds. One item, `pk = layout`,
//! `sk = version`, says it; `va-admin migrate` writes it after moving the
//! data. A function that finds a layout newer than its release knows
//! refuses to read or write (the table was upgraded and this code was not):
//! it never writes beside cells it cannot read. No item means a table of
//! this release or an earlier one, which this release reads.
//!
//! Layouts: 1, one cell per minute for the org and per flow (before 1.0.0;
//! `va-admin migrate` moves it); 2, the sharded cells, org prefixes, the org
//! tag and the cells' `ttl` (1.0.0).

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use token_store::conditional_check_failed;

use crate::store::{AnalyticsError, AnalyticsStore, key};

/// The layout this release writes and reads.
pub const LAYOUT: u32 = 2;
/// The layout item's partition key.
pub const LAYOUT_PK: &str = "layout";
const LAYOUT_SK: &str = "version";
const LAYOUT_ATTR: &str = "layout";

/// The layout the table says it holds (`None`: no item), or an error if it
/// is newer than [`LAYOUT`]. One strongly consistent `GetItem`.
pub async fn check(store: &AnalyticsStore) -> Result<Option<u32>, AnalyticsError> {
    let out = store
        .client()
        .get_item()
        .table_name(store.table())
        .key(key::PK, AttributeValue::S(LAYOUT_PK.into()))
        .key(key::SK, AttributeValue::S(LAYOUT_SK.into()))
        .projection_expression("#l")
        .expression_attribute_names("#l", LAYOUT_ATTR)
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| store.dynamodb("GetItem (layout)", DisplayErrorContext(e)))?;
    let found = out
        .item()
        .and_then(|i| i.get(LAYOUT_ATTR))
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<u32>().ok());
    match found {
        Some(layout) if layout > LAYOUT => Err(AnalyticsError::UnknownLayout {
            found: layout,
            known: LAYOUT,
        }),
        other => Ok(other),
    }
}

/// Records that the table holds [`LAYOUT`], never over a newer one.
pub async fn record(store: &AnalyticsStore) -> Result<(), AnalyticsError> {
    let r = store
        .client()
        .put_item()
        .table_name(store.table())
        .item(key::PK, AttributeValue::S(LAYOUT_PK.into()))
        .item(key::SK, AttributeValue::S(LAYOUT_SK.into()))
        .item(LAYOUT_ATTR, AttributeValue::N(LAYOUT.to_string()))
        .condition_expression("attribute_not_exists(#pk) OR #l <= :v")
        .expression_attribute_names("#pk", key::PK)
        .expression_attribute_names("#l", LAYOUT_ATTR)
        .expression_attribute_values(":v", AttributeValue::N(LAYOUT.to_string()))
        .send()
        .await;
    match r {
        Ok(_) => Ok(()),
        // A newer layout: say which.
        Err(e) if conditional_check_failed(&e) => check(store).await.map(|_| ()),
        Err(e) => Err(store.dynamodb("PutItem (layout)", DisplayErrorContext(e))),
    }
}

/// A layout check done once per container: the first caller reads the
/// item, everyone after gets its answer (a newer layout never goes back).
#[derive(Debug, Default)]
pub struct LayoutGate {
    answer: tokio::sync::OnceCell<Result<(), AnalyticsError>>,
}

impl LayoutGate {
    /// `Ok` when the table's layout is one this release knows. A failed
    /// read is not remembered: the next call reads again.
    pub async fn pass(&self, store: &AnalyticsStore) -> Result<(), AnalyticsError> {
        if let Some(a) = self.answer.get() {
            return a.clone();
        }
        match check(store).await {
            Ok(_) => {
                let _ = self.answer.set(Ok(()));
                Ok(())
            }
            Err(e @ AnalyticsError::UnknownLayout { .. }) => {
                tracing::error!(error = %e, "refusing the analytics table's layout");
                let _ = self.answer.set(Err(e.clone()));
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}
