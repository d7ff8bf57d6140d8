//! What a handler needs, built once per cold start: a failure here stops the function at init
//! with a message, instead of failing every request.

use anyhow::Context;

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::pagination::CursorCodec;
use crate::store::DynamoStore;

/// The dependencies of a handler. Handlers are generic over the store, so tests can pass another.
pub struct Deps<S = DynamoStore> {
    pub store: S,
    pub keys: JwtKeys,
    pub cursors: CursorCodec,
    /// Length of an appointment, in minutes.
    pub appointment_minutes: u32,
}

impl<S> Deps<S> {
    /// Dependencies around a given store, with keys from the configuration.
    pub fn with_store(store: S, config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            store,
            keys: JwtKeys::new(&config.jwt).context("invalid signing key")?,
            cursors: CursorCodec::new(config.jwt.secret_bytes()),
            appointment_minutes: config.appointment_minutes,
        })
    }
}

impl Deps {
    /// Reads the configuration and builds the AWS clients and signing keys.
    pub async fn from_env() -> anyhow::Result<Self> {
        let config = Config::from_env().context("invalid configuration")?;
        let store = DynamoStore::from_config(&config).await;
        Deps::with_store(store, &config)
    }
}
