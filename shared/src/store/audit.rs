//! Audit items: partitioned by month, and indexed by user (`gsi1`) and by action (`gsi2`), so
//! every listing of `GET /audit-logs` is a Query.

use anyhow::Context;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use super::keys::{
    audit_action_pk, audit_month_pk, audit_sk, audit_user_pk, month_of, precise_key_time,
};
use super::{DynamoStore, Item, position_from_key, start_key};
use crate::audit::{AuditQuery, AuditRecord, AuditStore};
use crate::pagination::{Page, Position};

/// How many Queries one page may take when filters leave pages short.
const MAX_QUERIES_PER_PAGE: usize = 24;
/// The cursor field that says which month a month-by-month listing is in.
const MONTH: &str = "month";

/// An audit item: the record as `GET /audit-logs` shows it, under its keys.
#[derive(Serialize)]
struct AuditItem<'a> {
    pk: String,
    sk: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    gsi2pk: String,
    gsi2sk: String,
    #[serde(flatten)]
    record: &'a AuditRecord,
}

impl<'a> From<&'a AuditRecord> for AuditItem<'a> {
    fn from(record: &'a AuditRecord) -> Self {
        let sk = audit_sk(record.timestamp, record.id);
        Self {
            pk: audit_month_pk(&month_of(record.timestamp)),
            gsi1pk: record.user_id.map(audit_user_pk),
            gsi1sk: record.user_id.map(|_| sk.clone()),
            gsi2pk: audit_action_pk(record.action.as_str()),
            gsi2sk: sk.clone(),
            sk,
            record,
        }
    }
}

/// The attributes of a record, which a listing's Query projects: the six key attributes of
/// each item are neither sent nor parsed. As expression attribute names (`#id` for `id`, and
/// so on), since some of them are DynamoDB reserved words.
const RECORD_FIELDS: [&str; 9] = [
    "id",
    "user_id",
    "role",
    "action",
    "entity_type",
    "entity_id",
    "timestamp",
    "request_id",
    "outcome",
];
const RECORD_PROJECTION: &str = concat!(
    "#id, #user_id, #role, #action, #entity_type, #entity_id, ",
    "#timestamp, #request_id, #outcome"
);

/// Where one Query reads: an index (or the table) and a partition.
struct Source {
    index: Option<&'static str>,
    pk_name: &'static str,
    sk_name: &'static str,
    partition: String,
}

impl DynamoStore {
    /// One Query, newest first, within the query's time range and filters.
    async fn audit_query(
        &self,
        source: &Source,
        query: &AuditQuery,
        limit: usize,
        start: Option<Item>,
    ) -> anyhow::Result<(Vec<AuditRecord>, Option<Item>)> {
        let mut filters = Vec::new();
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(source.index.map(str::to_owned))
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#pk", source.pk_name)
            .expression_attribute_names("#sk", source.sk_name)
            .expression_attribute_values(":pk", AttributeValue::S(source.partition.clone()))
            .expression_attribute_values(":from", AttributeValue::S(precise_key_time(query.from)))
            // `~` sorts after the `#<id>` suffix, so records at exactly `to` are included.
            .expression_attribute_values(
                ":to",
                AttributeValue::S(format!("{}~", precise_key_time(query.to))),
            )
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .projection_expression(RECORD_PROJECTION);
        for field in RECORD_FIELDS {
            request = request.expression_attribute_names(format!("#{field}"), field);
        }
        if let (Some(action), None) = (query.action, source.index.filter(|i| *i == "gsi2")) {
            // `#action` and `#entity_type` are among the projection's names.
            filters.push("#action = :action");
            let action = AttributeValue::S(action.as_str().into());
            request = request.expression_attribute_values(":action", action);
        }
        if let Some(entity_type) = query.entity_type {
            filters.push("#entity_type = :entity_type");
            request = request.expression_attribute_values(
                ":entity_type",
                AttributeValue::S(entity_type.as_str().into()),
            );
        }
        if !filters.is_empty() {
            request = request.filter_expression(filters.join(" AND "));
        }
        let output = request.send().await.context("Failed to list audit records")?;
        let records = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| Ok(serde_dynamo::from_item(item)?))
            .collect::<anyhow::Result<Vec<AuditRecord>>>()?;
        Ok((records, output.last_evaluated_key))
    }

    /// Fills a page from one partition, following its pages while filters leave it short.
    async fn audit_from(
        &self,
        source: &Source,
        query: &AuditQuery,
        limit: usize,
        mut start: Option<Item>,
        records: &mut Vec<AuditRecord>,
        queries: &mut usize,
    ) -> anyhow::Result<Option<Item>> {
        loop {
            let want = limit - records.len();
            let (found, next) = self.audit_query(source, query, want, start).await?;
            records.extend(found);
            *queries += 1;
            if next.is_none() || records.len() >= limit || *queries >= MAX_QUERIES_PER_PAGE {
                return Ok(next);
            }
            start = next;
        }
    }
}

/// The month before `month` (`2026-01` → `2025-12`).
fn previous_month(month: &str) -> Option<String> {
    let (year, month) = month.split_once('-')?;
    let (year, month): (i32, u32) = (year.parse().ok()?, month.parse().ok()?);
    Some(if month == 1 {
        format!("{:04}-12", year - 1)
    } else {
        format!("{year:04}-{:02}", month - 1)
    })
}

impl AuditStore for DynamoStore {
    async fn record(&self, record: &AuditRecord) -> anyhow::Result<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(AuditItem::from(record))?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(anyhow::Error::new(error).context("Failed to write an audit record")),
        }
    }

    async fn audit_page(
        &self,
        query: &AuditQuery,
        limit: u32,
        after: Option<Position>,
    ) -> anyhow::Result<Page<AuditRecord>> {
        let limit = limit as usize;
        let mut records = Vec::with_capacity(limit);
        let mut queries = 0;

        let indexed = match (query.user_id, query.action) {
            (Some(user), _) => Some(Source {
                index: Some("gsi1"),
                pk_name: "gsi1pk",
                sk_name: "gsi1sk",
                partition: audit_user_pk(user),
            }),
            (None, Some(action)) => Some(Source {
                index: Some("gsi2"),
                pk_name: "gsi2pk",
                sk_name: "gsi2sk",
                partition: audit_action_pk(action.as_str()),
            }),
            (None, None) => None,
        };
        if let Some(source) = indexed {
            let start = after.map(start_key);
            let next =
                self.audit_from(&source, query, limit, start, &mut records, &mut queries).await?;
            return Ok(Page { items: records, next: next.map(position_from_key) });
        }

        // No index narrows it: read month partitions from `to` back to `from`.
        let first_month = month_of(query.from);
        let (mut month, mut start) = match after {
            Some(mut position) => {
                let month = position.remove(MONTH).context("cursor without a month")?;
                (month, (!position.is_empty()).then(|| start_key(position)))
            }
            None => (month_of(query.to), None),
        };
        loop {
            let source = Source {
                index: None,
                pk_name: "pk",
                sk_name: "sk",
                partition: audit_month_pk(&month),
            };
            let next =
                self.audit_from(&source, query, limit, start, &mut records, &mut queries).await?;
            let resume = match next {
                Some(key) => Some((month.clone(), Some(key))),
                None if month > first_month => previous_month(&month).map(|m| (m, None)),
                None => None,
            };
            let Some((next_month, next_key)) = resume else {
                return Ok(Page { items: records, next: None });
            };
            if records.len() >= limit || queries >= MAX_QUERIES_PER_PAGE {
                let mut position = next_key.map(position_from_key).unwrap_or_default();
                position.insert(MONTH.to_owned(), next_month);
                return Ok(Page { items: records, next: Some(position) });
            }
            (month, start) = (next_month, next_key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Action, EntityType, Outcome};
    use crate::users::{Role, UserId};

    #[test]
    fn months_count_back_across_years() {
        assert_eq!(previous_month("2026-03").as_deref(), Some("2026-02"));
        assert_eq!(previous_month("2026-01").as_deref(), Some("2025-12"));
    }

    #[test]
    fn a_record_is_keyed_by_month_user_and_action() {
        let record = AuditRecord {
            id: 42,
            user_id: Some(UserId::new(7)),
            role: Some(Role::Doctor),
            action: Action::ReadHealthData,
            entity_type: EntityType::Appointment,
            entity_id: Some("9".into()),
            timestamp: time::macros::datetime!(2026-12-04 16:00:01 UTC),
            request_id: None,
            outcome: Outcome::Success,
        };

        let item = AuditItem::from(&record);

        assert_eq!(item.pk, "AUDIT#2026-12");
        assert_eq!(item.sk, "2026-12-04T16:00:01.000000000Z#0000000000000042");
        assert_eq!(item.gsi1pk.as_deref(), Some("AUDIT_USER#7"));
        assert_eq!(item.gsi2pk, "AUDIT_ACTION#READ_HEALTH_DATA");
        let mut stored: Item = serde_dynamo::to_item(item).unwrap();
        let keys = ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"];
        let mut names: Vec<&str> = stored.keys().map(String::as_str).collect();
        names.retain(|name| !keys.contains(name));
        names.sort_unstable();
        let mut fields = RECORD_FIELDS.to_vec();
        fields.sort_unstable();
        assert_eq!(names, fields, "a listing projects every attribute but the keys");
        stored.retain(|name, _| RECORD_FIELDS.contains(&name.as_str()));
        assert_eq!(serde_dynamo::from_item::<_, AuditRecord>(stored).unwrap(), record);
    }

    #[test]
    fn a_listing_projects_every_field_of_a_row_by_name() {
        let names: Vec<String> = RECORD_FIELDS.iter().map(|f| format!("#{f}")).collect();
        assert_eq!(RECORD_PROJECTION, names.join(", "));
    }
}
