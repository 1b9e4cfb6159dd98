//! One `TransactWriteItems` as the write path builds it: its items, what
//! each one is, and how a refusal is read back.

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};

use super::{AnalyticsError, AnalyticsStore};

/// DynamoDB's limit on the items of one transaction.
const MAX_ITEMS: usize = 100;

/// What each item of a transaction is, to read its cancellation reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// The marker of the plan at this index: its refusal means "counted before".
    Marker(usize),
    /// The conversation's state: refused when another writer moved it on.
    State,
    /// The pending enrichment a plan resolves: refused when already resolved.
    Resolved,
    /// Anything else (cells, dirty marks, a new pending enrichment).
    Other,
}

/// A transaction being built.
#[derive(Debug, Default)]
pub(super) struct Transaction {
    items: Vec<TransactWriteItem>,
    slots: Vec<Slot>,
}

/// Why a transaction was not written.
#[derive(Debug)]
pub(super) struct Refused {
    /// The items whose condition failed (empty unless it was cancelled).
    pub(super) failed: Vec<Slot>,
    /// The refusal as the store reports it when no condition explains it.
    pub(super) error: AnalyticsError,
}

impl Transaction {
    /// Adds a put.
    pub(super) fn put(&mut self, slot: Slot, put: Put) {
        self.push(slot, TransactWriteItem::builder().put(put).build());
    }

    /// Adds an update.
    pub(super) fn update(&mut self, slot: Slot, update: Update) {
        self.push(slot, TransactWriteItem::builder().update(update).build());
    }

    /// Adds a delete.
    pub(super) fn delete(&mut self, slot: Slot, delete: Delete) {
        self.push(slot, TransactWriteItem::builder().delete(delete).build());
    }

    fn push(&mut self, slot: Slot, item: TransactWriteItem) {
        self.items.push(item);
        self.slots.push(slot);
    }

    /// Writes every item or none. `event_id` names the event in the error
    /// of a transaction larger than DynamoDB takes.
    pub(super) async fn send(
        self,
        store: &AnalyticsStore,
        op: &'static str,
        event_id: &str,
    ) -> Result<(), Refused> {
        if self.items.len() > MAX_ITEMS {
            return Err(Refused {
                failed: Vec::new(),
                error: AnalyticsError::TooLarge {
                    event_id: event_id.to_string(),
                    items: self.items.len(),
                },
            });
        }
        let result = store
            .client
            .transact_write_items()
            .set_transact_items(Some(self.items))
            .send()
            .await;
        result.map(|_| ()).map_err(|e| Refused {
            failed: failed_conditions(&e, &self.slots),
            error: refusal(&e).unwrap_or_else(|| store.dynamodb(op, DisplayErrorContext(e))),
        })
    }
}

/// The slots whose condition check failed, from a cancellation's reasons
/// (one a item, in order).
fn failed_conditions(e: &SdkError<TransactWriteItemsError>, slots: &[Slot]) -> Vec<Slot> {
    let Some(TransactWriteItemsError::TransactionCanceledException(c)) = e.as_service_error()
    else {
        return Vec::new();
    };
    c.cancellation_reasons()
        .iter()
        .zip(slots)
        .filter(|(r, _)| r.code() == Some("ConditionalCheckFailed"))
        .map(|(_, s)| *s)
        .collect()
}

/// A transaction DynamoDB refused for now, not for good: a conflict with
/// another transaction, or a throttle. `None` for anything else.
fn refusal(e: &SdkError<TransactWriteItemsError>) -> Option<AnalyticsError> {
    use TransactWriteItemsError as E;
    match e.as_service_error()? {
        E::TransactionCanceledException(c) => {
            let codes: Vec<&str> = c
                .cancellation_reasons()
                .iter()
                .filter_map(|r| r.code())
                .collect();
            if codes.contains(&"TransactionConflict") {
                Some(AnalyticsError::Conflict {
                    reason: "another transaction held an item".into(),
                })
            } else if codes.contains(&"ThrottlingError")
                || codes.contains(&"ProvisionedThroughputExceeded")
            {
                Some(AnalyticsError::Throttled {
                    reason: "an item of the transaction was throttled".into(),
                })
            } else {
                None
            }
        }
        E::ProvisionedThroughputExceededException(_)
        | E::ThrottlingException(_)
        | E::RequestLimitExceeded(_)
        | E::TransactionInProgressException(_) => Some(AnalyticsError::Throttled {
            reason: DisplayErrorContext(e).to_string(),
        }),
        _ => None,
    }
}
