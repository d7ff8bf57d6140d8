//! DynamoDB storage: one table, generic keys (`pk`, `sk`, and the overloaded indexes `gsi1`,
//! `gsi2`). `ARCHITECTURE.md` lists every item kind and the access pattern it serves.

mod analytics;
mod appointments;
mod audit;
mod keys;
pub mod memory;
mod outbox;
mod profiles;
mod throttle;
mod users;

use std::collections::HashMap;

use anyhow::Context;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use serde::Serialize;

use crate::config::Config;
use crate::pagination::Position;

/// How many times a batch read asks for the keys DynamoDB leaves unprocessed, in all.
const BATCH_ATTEMPTS: u32 = 4;
/// The most keys one `BatchGetItem` takes.
const BATCH_KEYS: usize = 100;

/// A DynamoDB item.
type Item = HashMap<String, AttributeValue>;

/// The clinic table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// A store from the standard AWS environment (region, credentials, and `AWS_ENDPOINT_URL`
    /// when an emulator is used) and the configured table.
    pub async fn from_config(config: &Config) -> Self {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(Client::new(&sdk), config.table_name.clone())
    }

    /// A transaction item that creates `item`, failing if its key exists.
    fn put_new(&self, item: impl Serialize) -> anyhow::Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(item)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// One item by key, read consistently.
    async fn get(&self, pk: String, sk: &str) -> anyhow::Result<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .context("Failed to read an item")?;
        Ok(output.item)
    }

    /// Items by key (`pk`, `sk`, no key twice), read with `BatchGetItem`s of up to 100 keys;
    /// keys that DynamoDB leaves unprocessed under load are asked for again. The answer holds
    /// each item found under its key; missing items are absent.
    async fn get_many<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a Key>,
        consistent: bool,
    ) -> anyhow::Result<HashMap<Key, Item>> {
        let mut keys: Vec<Item> = keys.into_iter().map(|(pk, sk)| key(pk.clone(), sk)).collect();
        let mut found = HashMap::with_capacity(keys.len());
        while !keys.is_empty() {
            let rest = keys.split_off(keys.len().min(BATCH_KEYS));
            let mut pending = std::mem::replace(&mut keys, rest);
            for attempt in 1.. {
                let reads = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(consistent)
                    .build()
                    .context("a batch read without keys")?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, reads)
                    .send()
                    .await
                    .context("Failed to read items")?;
                let items = output.responses.and_then(|mut r| r.remove(&self.table));
                for item in items.unwrap_or_default() {
                    let key =
                        key_of(&item).context("a batch read answered an item without a key")?;
                    found.insert(key, item);
                }
                let unprocessed = output.unprocessed_keys.and_then(|mut u| u.remove(&self.table));
                match unprocessed.map(|u| u.keys).filter(|keys| !keys.is_empty()) {
                    None => break,
                    Some(_) if attempt == BATCH_ATTEMPTS => {
                        return Err(anyhow::Error::new(crate::error::Contended)
                            .context("DynamoDB kept leaving keys of a batch read unprocessed"));
                    }
                    Some(keys) => pending = keys,
                }
                tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt))).await;
            }
        }
        Ok(found)
    }
}

/// The primary key of an item as values: `pk`, `sk`.
type Key = (String, String);

/// The primary key of an item.
fn key(pk: String, sk: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

/// The `pk` and `sk` of an item.
fn key_of(item: &Item) -> Option<Key> {
    let value = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    Some((value("pk")?, value("sk")?))
}

/// A query's `LastEvaluatedKey` as a cursor position (every key attribute is a string).
fn position_from_key(key: Item) -> Position {
    key.into_iter()
        .filter_map(|(name, value)| value.as_s().ok().map(|s| (name, s.clone())))
        .collect()
}

/// A cursor position as an `ExclusiveStartKey`.
fn start_key(position: Position) -> Item {
    position.into_iter().map(|(name, value)| (name, AttributeValue::S(value))).collect()
}

/// The cancellation reason codes of a cancelled transaction, one per item; `None` when the
/// failure was something else.
fn cancellation_reasons(error: &SdkError<TransactWriteItemsError>) -> Option<Vec<String>> {
    match error.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(cancelled) => Some(
            cancelled
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_owned())
                .collect(),
        ),
        _ => None,
    }
}

fn is_cancelled(error: &SdkError<TransactWriteItemsError>) -> bool {
    cancellation_reasons(error).is_some()
}

/// Whether a failed write is worth retrying: contention or throttling, not a bug.
fn is_contention(error: &SdkError<TransactWriteItemsError>) -> bool {
    match error.as_service_error() {
        Some(
            TransactWriteItemsError::ProvisionedThroughputExceededException(_)
            | TransactWriteItemsError::RequestLimitExceeded(_)
            | TransactWriteItemsError::ThrottlingException(_)
            | TransactWriteItemsError::TransactionInProgressException(_),
        ) => true,
        _ => cancellation_reasons(error).is_some_and(|codes| {
            codes.iter().any(|c| matches!(c.as_str(), "TransactionConflict" | "ThrottlingError"))
        }),
    }
}
