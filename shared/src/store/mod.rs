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
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::Serialize;

use crate::config::Config;
use crate::pagination::Position;

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
}

/// The primary key of an item.
fn key(pk: String, sk: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ])
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
