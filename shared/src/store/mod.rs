//! DynamoDB storage: one table, generic keys (`pk`, `sk`, and the overloaded indexes `gsi1`,
//! `gsi2`). `ARCHITECTURE.md` lists every item kind and the access pattern it serves.

mod keys;
pub mod memory;
mod users;

use aws_sdk_dynamodb::Client;

use crate::config::Config;

/// The clinic table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// A store from the standard AWS environment (region, credentials, and `AWS_ENDPOINT_URL`
    /// when an emulator is used) and the configured table.
    pub async fn from_config(config: &Config) -> Self {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(Client::new(&sdk), config.table_name.clone())
    }
}

/// A DynamoDB item.
type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;
