//! Failed sign-in counters: one item per account or address, counted with an atomic `ADD` while
//! their window lasts, replaced when it is over, and removed by the table's TTL (`expires_at`)
//! after it ends (TTL deletes late, so reads check the window themselves).

use anyhow::Context;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde::{Deserialize, Serialize};

use super::keys::{HEALTH_PROBE_PK, HEALTH_PROBE_SK, THROTTLE_SK, throttle_pk};
use super::{DynamoStore, key};
use crate::error::Contended;
use crate::health::TableProbe;
use crate::throttle::{AttemptCounter, Count, ThrottleKey};

/// How often counting is tried when other requests restart the same window meanwhile.
const COUNT_ATTEMPTS: u32 = 3;

#[derive(Serialize, Deserialize)]
struct CounterItem {
    pk: String,
    sk: String,
    failures: u32,
    /// Unix seconds.
    window_start: i64,
    /// When the table may delete the item (Unix seconds): the end of its window.
    expires_at: i64,
}

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// Whether a write failed on its condition.
fn condition_failed<E, R>(error: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    error.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

impl DynamoStore {
    /// Adds one failure to a counter whose window is still open (or that does not exist yet);
    /// `None` when the counter's window is over.
    async fn add_in_window(
        &self,
        key: &ThrottleKey,
        now: i64,
        window_seconds: u32,
    ) -> anyhow::Result<Option<Count>> {
        let window = i64::from(window_seconds);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .update_expression(
                "ADD failures :one \
                 SET window_start = if_not_exists(window_start, :now), \
                 expires_at = if_not_exists(expires_at, :ends)",
            )
            .condition_expression("attribute_not_exists(window_start) OR window_start > :floor")
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":ends", number(now + window))
            .expression_attribute_values(":floor", number(now - window))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let item: CounterItem =
                    serde_dynamo::from_item(output.attributes.unwrap_or_default())
                        .context("Failed to read a sign-in counter")?;
                Ok(Some(Count { failures: item.failures, window_start: item.window_start }))
            }
            Err(error) if condition_failed(&error) => Ok(None),
            Err(error) => Err(anyhow::Error::new(error).context("Failed to count a sign-in")),
        }
    }

    /// Replaces a counter whose window is over with a new window holding one failure; `false`
    /// when another request replaced it first.
    async fn restart_window(
        &self,
        key: &ThrottleKey,
        now: i64,
        window_seconds: u32,
    ) -> anyhow::Result<bool> {
        let window = i64::from(window_seconds);
        let item = CounterItem {
            pk: throttle_pk(key),
            sk: THROTTLE_SK.to_owned(),
            failures: 1,
            window_start: now,
            expires_at: now + window,
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(item)?))
            .condition_expression("window_start <= :floor")
            .expression_attribute_values(":floor", number(now - window))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if condition_failed(&error) => Ok(false),
            Err(error) => {
                Err(anyhow::Error::new(error).context("Failed to restart a sign-in window"))
            }
        }
    }
}

fn key_of(key: &ThrottleKey) -> super::Item {
    self::key(throttle_pk(key), THROTTLE_SK)
}

impl AttemptCounter for DynamoStore {
    async fn failures(
        &self,
        key: &ThrottleKey,
        now: i64,
        window_seconds: u32,
    ) -> anyhow::Result<Option<Count>> {
        let Some(item) = self.get(throttle_pk(key), THROTTLE_SK).await? else {
            return Ok(None);
        };
        let item: CounterItem =
            serde_dynamo::from_item(item).context("Failed to read a sign-in counter")?;
        let current = item.window_start > now - i64::from(window_seconds);
        Ok(current.then_some(Count { failures: item.failures, window_start: item.window_start }))
    }

    async fn count_failure(
        &self,
        key: &ThrottleKey,
        now: i64,
        window_seconds: u32,
    ) -> anyhow::Result<Count> {
        for _ in 0..COUNT_ATTEMPTS {
            if let Some(count) = self.add_in_window(key, now, window_seconds).await? {
                return Ok(count);
            }
            if self.restart_window(key, now, window_seconds).await? {
                return Ok(Count { failures: 1, window_start: now });
            }
        }
        Err(anyhow::Error::new(Contended).context("Failed to count a failed sign-in"))
    }

    async fn reset(&self, key: &ThrottleKey) -> anyhow::Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .send()
            .await
            .context("Failed to reset a sign-in counter")?;
        Ok(())
    }
}

impl TableProbe for DynamoStore {
    async fn probe(&self) -> anyhow::Result<()> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(HEALTH_PROBE_PK.to_owned(), HEALTH_PROBE_SK)))
            .send()
            .await
            .context("The table did not answer")?;
        Ok(())
    }
}
