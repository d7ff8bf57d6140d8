//! Outbox items: an event kept until it is published.

use anyhow::Context;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use futures::future::try_join_all;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::DynamoStore;
use super::keys::{OUTBOX_SHARDS, key_time, outbox_pk, outbox_sk};
use crate::events::{DomainEvent, EventDetail, OutboxStore};

#[derive(Serialize, Deserialize)]
struct OutboxItem {
    pk: String,
    sk: String,
    /// The event's detail as JSON, exactly as it will be published.
    detail: String,
}

impl OutboxItem {
    fn of(event: &DomainEvent) -> anyhow::Result<Self> {
        let id = event.id();
        Ok(Self {
            pk: outbox_pk(id % OUTBOX_SHARDS),
            sk: outbox_sk(event.detail.occurred_at, id),
            detail: serde_json::to_string(&event.detail)?,
        })
    }
}

impl DynamoStore {
    /// The outbox item of `event`, to write in the same transaction as its change.
    pub(super) fn outbox_put(&self, event: &DomainEvent) -> anyhow::Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(OutboxItem::of(event)?)?))
            .build()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn pending_in(
        &self,
        shard: u64,
        before: OffsetDateTime,
        limit: u32,
    ) -> anyhow::Result<Vec<DomainEvent>> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk < :before")
            .expression_attribute_values(":pk", AttributeValue::S(outbox_pk(shard)))
            .expression_attribute_values(":before", AttributeValue::S(key_time(before)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .context("Failed to read the outbox")?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let item: OutboxItem = serde_dynamo::from_item(item)?;
                let detail: EventDetail = serde_json::from_str(&item.detail)?;
                Ok(DomainEvent { detail })
            })
            .collect()
    }
}

impl OutboxStore for DynamoStore {
    async fn keep(&self, event: &DomainEvent) -> anyhow::Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(OutboxItem::of(event)?)?))
            .send()
            .await
            .context("Failed to keep an event in the outbox")?;
        Ok(())
    }

    async fn clear(&self, event: &DomainEvent) -> anyhow::Result<()> {
        let item = OutboxItem::of(event)?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(item.pk))
            .key("sk", AttributeValue::S(item.sk))
            .send()
            .await
            .context("Failed to clear an outbox item")?;
        Ok(())
    }

    async fn pending(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> anyhow::Result<Vec<DomainEvent>> {
        let shards = (0..OUTBOX_SHARDS).map(|shard| self.pending_in(shard, before, limit));
        let mut events: Vec<DomainEvent> =
            try_join_all(shards).await?.into_iter().flatten().collect();
        events.sort_by_key(|e| (e.detail.occurred_at, e.id()));
        events.truncate(limit as usize);
        Ok(events)
    }
}
