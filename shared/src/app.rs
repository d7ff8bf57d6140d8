//! What a handler needs, built once per cold start: a failure here stops the function at init
//! with a message, instead of failing every request.

use anyhow::Context;

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::events::{Delivery, EventBridgeBus};
use crate::pagination::CursorCodec;
use crate::store::DynamoStore;
use crate::throttle::{LoginThrottle, ThrottleConfig};

/// The dependencies of a handler. Handlers are generic over the store and the event bus, so
/// tests can pass others.
pub struct Deps<S = DynamoStore, B = EventBridgeBus> {
    pub store: S,
    pub bus: B,
    pub keys: JwtKeys,
    pub cursors: CursorCodec,
    /// Length of an appointment, in minutes.
    pub appointment_minutes: u32,
    /// Limits of failed sign-in attempts.
    pub login_throttle: ThrottleConfig,
}

impl<S, B> Deps<S, B> {
    /// Dependencies around a given store and bus, with keys from the configuration.
    pub fn with_parts(store: S, bus: B, config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            store,
            bus,
            keys: JwtKeys::new(&config.jwt).context("invalid signing key")?,
            cursors: CursorCodec::new(config.jwt.secret_bytes()),
            appointment_minutes: config.appointment_minutes,
            login_throttle: config.login_throttle,
        })
    }

    /// Event delivery through this bus, with this store's outbox.
    pub fn delivery(&self) -> Delivery<'_, B, S> {
        Delivery { bus: &self.bus, outbox: &self.store }
    }

    /// Sign-in throttling with this store's counters.
    pub fn throttle(&self) -> LoginThrottle<'_, S> {
        LoginThrottle { counter: &self.store, config: self.login_throttle }
    }
}

impl Deps {
    /// Reads the configuration (with the signing key from Secrets Manager when only
    /// `SECRET_KEY_ARN` names it) and builds the AWS clients and the signing keys.
    pub async fn from_env() -> anyhow::Result<Self> {
        let sdk = sdk_config().await;
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        let config = Config::load(&secrets).await.context("invalid configuration")?;
        let (store, bus) = clients_of(&sdk, &config.table_name, &config.event_bus_name);
        Deps::with_parts(store, bus, &config)
    }
}

/// The SDK configuration: region, credentials, and `AWS_ENDPOINT_URL` when an emulator is used.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The table and the bus, from one SDK configuration.
pub async fn clients(table: &str, bus: &str) -> (DynamoStore, EventBridgeBus) {
    clients_of(&sdk_config().await, table, bus)
}

fn clients_of(
    sdk: &aws_config::SdkConfig,
    table: &str,
    bus: &str,
) -> (DynamoStore, EventBridgeBus) {
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), table);
    (store, EventBridgeBus::new(aws_sdk_eventbridge::Client::new(sdk), bus))
}

/// The table and the bus for functions that sign nothing (event consumers, the redrive): they
/// read only `TABLE_NAME` and `EVENT_BUS_NAME`.
pub async fn clients_from_env() -> (DynamoStore, EventBridgeBus) {
    clients(&name_from_env("TABLE_NAME"), &name_from_env("EVENT_BUS_NAME")).await
}

/// The table alone (`TABLE_NAME`), for a function that publishes and signs nothing: the health
/// check links no other client.
pub async fn store_from_env() -> DynamoStore {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    DynamoStore::new(client, name_from_env("TABLE_NAME"))
}

fn name_from_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| "clinic".to_owned())
}
