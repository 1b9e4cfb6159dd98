//! Write units, counted where the SDK sends each write: an interceptor on the
//! DynamoDB client. DynamoDB charges a standard write 1 unit per KB of the
//! item and a transactional write 2 units per KB per item (developer guide,
//! "Read/write capacity mode"). The size counted is the request's
//! attributes (names and values) per item, at least 1 KB: an update of an
//! existing item is charged on the larger of the item before and after, which
//! a client cannot see, so this is a lower bound for updates of big items.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde::Serialize;

/// What the metered writes cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WriteUnits {
    /// Units of the writes that succeeded.
    pub units: u64,
    /// Units of the writes DynamoDB refused (conflicts, conditions, throttles).
    pub refused_units: u64,
    /// Items per successful transaction, one entry each.
    pub items_per_transaction: Vec<u64>,
    /// Requests refused.
    pub refused: u64,
    /// Time transactions spent in flight, summed (µs): over the wall time,
    /// how many were in flight on average.
    pub transaction_busy_us: u64,
}

/// Counts write units on one client; clone it into as many clients as needed.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    inner: Arc<Mutex<WriteUnits>>,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    units: u64,
    transaction_items: Option<u64>,
    started: std::time::Instant,
}

impl Storable for Pending {
    type Storer = StoreReplace<Self>;
}

fn attr_size(name: &str, v: &AttributeValue) -> u64 {
    let value = match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::M(m) => m.iter().map(|(k, v)| attr_size(k, v) as usize + 3).sum(),
        AttributeValue::L(l) => l.iter().map(|v| attr_size("", v) as usize + 1).sum(),
        _ => 1,
    };
    (name.len() + value) as u64
}

fn units_of<'a>(attrs: impl Iterator<Item = (&'a String, &'a AttributeValue)>) -> u64 {
    let bytes: u64 = attrs.map(|(k, v)| attr_size(k, v)).sum();
    bytes.div_ceil(1024).max(1)
}

/// Attributes an update writes: its key and the values it sets.
fn update_units(
    key: Option<&std::collections::HashMap<String, AttributeValue>>,
    values: Option<&std::collections::HashMap<String, AttributeValue>>,
) -> u64 {
    units_of(
        key.into_iter()
            .flatten()
            .chain(values.into_iter().flatten()),
    )
}

impl Meter {
    /// A new meter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// What it counted so far.
    pub fn read(&self) -> WriteUnits {
        self.inner.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// `client` with this meter on it.
    pub fn client(&self, config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(config)
                .interceptor(self.clone())
                .build(),
        )
    }
}

impl Intercept for Meter {
    fn name(&self) -> &'static str {
        "WriteUnitMeter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let input = context.input();
        let pending = if let Some(tx) = input.downcast_ref::<TransactWriteItemsInput>() {
            let items = tx.transact_items();
            let units = items
                .iter()
                .map(|i| {
                    2 * if let Some(p) = i.put() {
                        units_of(p.item().iter())
                    } else if let Some(u) = i.update() {
                        update_units(Some(u.key()), u.expression_attribute_values())
                    } else if let Some(d) = i.delete() {
                        units_of(d.key().iter())
                    } else {
                        // ConditionCheck: DynamoDB charges it as a write too.
                        1
                    }
                })
                .sum();
            Some(Pending {
                units,
                transaction_items: Some(items.len() as u64),
                started: std::time::Instant::now(),
            })
        } else if let Some(p) = input.downcast_ref::<PutItemInput>() {
            Some(Pending {
                units: units_of(p.item().into_iter().flatten()),
                transaction_items: None,
                started: std::time::Instant::now(),
            })
        } else if let Some(u) = input.downcast_ref::<UpdateItemInput>() {
            Some(Pending {
                units: update_units(u.key(), u.expression_attribute_values()),
                transaction_items: None,
                started: std::time::Instant::now(),
            })
        } else {
            input.downcast_ref::<DeleteItemInput>().map(|d| Pending {
                units: units_of(d.key().into_iter().flatten()),
                transaction_items: None,
                started: std::time::Instant::now(),
            })
        };
        if let Some(p) = pending {
            cfg.interceptor_state().store_put(p);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let Some(p) = cfg.load::<Pending>().copied() else {
            return Ok(());
        };
        let ok = matches!(context.output_or_error(), Some(Ok(_)));
        if let Ok(mut w) = self.inner.lock() {
            if p.transaction_items.is_some() {
                w.transaction_busy_us +=
                    u64::try_from(p.started.elapsed().as_micros()).unwrap_or(0);
            }
            if ok {
                w.units += p.units;
                if let Some(n) = p.transaction_items {
                    w.items_per_transaction.push(n);
                }
            } else {
                w.refused += 1;
                w.refused_units += p.units;
            }
        }
        Ok(())
    }
}
