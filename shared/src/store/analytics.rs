//! Statistics items: per cell an all-time `TOTAL` item (also ranked in `gsi1` per resolution)
//! and one item per appointment day; per counted event a marker, so an event counts once.

use std::time::Duration;

use anyhow::Context;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use time::Date;

use super::keys::{STATS_TOTAL_SK, busiest_pk, busiest_sk, stats_day_sk, stats_event_pk, stats_pk};
use super::{DynamoStore, Key, cancellation_reasons, key};
use crate::analytics::{Counts, DayCounts, RESOLUTIONS, StatsChange, StatsStore};
use crate::error::Contended;
use crate::geo::Cell;

/// Tries of one change while other changes race it on the same coarse cells.
const APPLY_ATTEMPTS: u32 = 40;
/// How long a counted-event marker is kept (DynamoDB's TTL removes it): longer than any
/// redelivery can come.
const MARKER_DAYS: i64 = 30;

#[derive(Serialize, Deserialize)]
struct TotalItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    cell: Cell,
    resolution: u8,
    scheduled: i64,
    cancelled: i64,
    total: i64,
    /// Bumped on every change: the optimistic lock of concurrent changes.
    version: u64,
}

#[derive(Deserialize)]
struct DayItem {
    sk: String,
    #[serde(default)]
    scheduled: i64,
    #[serde(default)]
    cancelled: i64,
}

/// The key of a cell's totals.
fn total_key(cell: Cell) -> Key {
    (stats_pk(cell), STATS_TOTAL_SK.to_owned())
}

impl DynamoStore {
    /// One attempt at a change: `Ok(Some(counted))`, or `Ok(None)` when a racing change won.
    async fn try_apply(&self, change: &StatsChange) -> anyhow::Result<Option<bool>> {
        let cells: Vec<Cell> = RESOLUTIONS
            .map(|r| {
                change.cell.parent(h3o::Resolution::try_from(r).unwrap_or(h3o::Resolution::Zero))
            })
            .collect();
        let keys: Vec<_> = cells.iter().map(|c| total_key(*c)).collect();
        let current = self.get_many(&keys, true).await?;

        let expires_at =
            (time::OffsetDateTime::now_utc() + time::Duration::days(MARKER_DAYS)).unix_timestamp();
        let marker = Put::builder()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(stats_event_pk(change.event_id)))
            .item("sk", AttributeValue::S("STATS".into()))
            .item("expires_at", AttributeValue::N(expires_at.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .build()?;
        let mut items = vec![TransactWriteItem::builder().put(marker).build()];
        for cell in &cells {
            let old: Option<TotalItem> = current
                .get(&total_key(*cell))
                .map(|i| serde_dynamo::from_item(i.clone()))
                .transpose()?;
            items.push(self.put_total(*cell, old, change)?);
            items.push(self.add_day(*cell, change)?);
        }

        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(Some(true)),
            Err(error) => match cancellation_reasons(&error) {
                Some(codes) if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") => {
                    Ok(Some(false))
                }
                Some(_) => Ok(None),
                None if super::is_contention(&error) => Ok(None),
                None => Err(anyhow::Error::new(error).context("Failed to count an appointment")),
            },
        }
    }

    /// The cell's new all-time counters, if nobody changed them since they were read.
    fn put_total(
        &self,
        cell: Cell,
        old: Option<TotalItem>,
        change: &StatsChange,
    ) -> anyhow::Result<TransactWriteItem> {
        let (scheduled, cancelled, version) =
            old.as_ref().map(|o| (o.scheduled, o.cancelled, o.version)).unwrap_or_default();
        let (scheduled, cancelled) =
            (scheduled + change.delta.scheduled, cancelled + change.delta.cancelled);
        let total = scheduled + cancelled;
        let item = TotalItem {
            pk: stats_pk(cell),
            sk: STATS_TOTAL_SK.to_owned(),
            gsi1pk: busiest_pk(cell.resolution()),
            gsi1sk: busiest_sk(total, cell),
            cell,
            resolution: cell.resolution(),
            scheduled,
            cancelled,
            total,
            version: version + 1,
        };
        let put =
            Put::builder().table_name(&self.table).set_item(Some(serde_dynamo::to_item(item)?));
        let put = match old {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(_) => put
                .condition_expression("version = :seen")
                .expression_attribute_values(":seen", AttributeValue::N(version.to_string())),
        };
        Ok(TransactWriteItem::builder().put(put.build()?).build())
    }

    /// Adds the change to the cell's day.
    fn add_day(&self, cell: Cell, change: &StatsChange) -> anyhow::Result<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(stats_pk(cell), &stats_day_sk(change.day))))
            .update_expression("ADD scheduled :s, cancelled :c")
            .expression_attribute_values(
                ":s",
                AttributeValue::N(change.delta.scheduled.to_string()),
            )
            .expression_attribute_values(
                ":c",
                AttributeValue::N(change.delta.cancelled.to_string()),
            )
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

impl StatsStore for DynamoStore {
    async fn apply(&self, change: &StatsChange) -> anyhow::Result<bool> {
        for attempt in 1..=APPLY_ATTEMPTS {
            if let Some(counted) = self.try_apply(change).await? {
                return Ok(counted);
            }
            let pause_ms = u64::from(attempt.min(10)) * 10 + rand::random_range(0..30);
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        }
        Err(anyhow::Error::new(Contended).context("statistics kept changing under a count"))
    }

    async fn counts(&self, cells: &[Cell]) -> anyhow::Result<Vec<Counts>> {
        // BatchGetItem refuses a key twice (a region is also ring 0 of its own disk).
        let mut unique = cells.to_vec();
        unique.sort();
        unique.dedup();
        let keys: Vec<_> = unique.iter().map(|c| total_key(*c)).collect();
        let found = self.get_many(&keys, false).await?;
        cells
            .iter()
            .map(|cell| match found.get(&total_key(*cell)) {
                None => Ok(Counts::default()),
                Some(item) => {
                    let item: TotalItem = serde_dynamo::from_item(item.clone())?;
                    Ok(Counts { scheduled: item.scheduled, cancelled: item.cancelled })
                }
            })
            .collect()
    }

    async fn days(&self, cell: Cell, from: Date, to: Date) -> anyhow::Result<Vec<DayCounts>> {
        let items = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", AttributeValue::S(stats_pk(cell)))
            .expression_attribute_values(":from", AttributeValue::S(stats_day_sk(from)))
            .expression_attribute_values(":to", AttributeValue::S(stats_day_sk(to)))
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let mut days = Vec::new();
        for item in items {
            let item: DayItem = serde_dynamo::from_item(item.context("Failed to read days")?)?;
            let day = Date::parse(item.sk.trim_start_matches("DAY#"), &format)?;
            if item.scheduled != 0 || item.cancelled != 0 {
                days.push(DayCounts { day, scheduled: item.scheduled, cancelled: item.cancelled });
            }
        }
        Ok(days)
    }

    async fn busiest(&self, resolution: u8, limit: u32) -> anyhow::Result<Vec<(Cell, Counts)>> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(busiest_pk(resolution)))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .context("Failed to rank regions")?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                let item: TotalItem = serde_dynamo::from_item(item)?;
                Ok((item.cell, Counts { scheduled: item.scheduled, cancelled: item.cancelled }))
            })
            .collect()
    }
}
