//! The audit trail: one record per event, written by the audit recorder, read by Admins through
//! `GET /audit-logs`, newest first.

use std::future::Future;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::events::{Action, EntityType, EventDetail, Outcome};
use crate::pagination::{Page, Position};
use crate::users::{Role, UserId};

/// The widest time range a listing without `user_id` or `action` reads, in months.
pub const MAX_UNFILTERED_MONTHS: i32 = 24;
/// The range listed when `from` is not given.
pub const DEFAULT_RANGE_DAYS: i64 = 366;

/// One audit record, as `GET /audit-logs` shows it (and as the store keeps it, under the item's
/// keys). The predecessor's fields (`id`, `user_id`, `action`, `entity_type`, `entity_id`,
/// `timestamp`) keep their names and types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    /// The event's id.
    pub id: u64,
    #[schema(value_type = Option<u64>)]
    pub user_id: Option<UserId>,
    pub role: Option<Role>,
    #[schema(value_type = String, example = "CREATE_APPOINTMENT")]
    pub action: Action,
    #[schema(value_type = String, example = "appointment")]
    pub entity_type: EntityType,
    pub entity_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: OffsetDateTime,
    pub request_id: Option<String>,
    pub outcome: Outcome,
}

impl From<&EventDetail> for AuditRecord {
    fn from(detail: &EventDetail) -> Self {
        Self {
            id: detail.event_id,
            user_id: detail.actor.map(|a| a.user_id),
            role: detail.actor.map(|a| a.role),
            action: detail.action,
            entity_type: detail.entity_type,
            entity_id: detail.entity_id.clone(),
            timestamp: detail.occurred_at,
            request_id: detail.request_id.clone(),
            outcome: detail.outcome,
        }
    }
}

/// Which records to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub user_id: Option<UserId>,
    pub action: Option<Action>,
    pub entity_type: Option<EntityType>,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
}

impl AuditQuery {
    /// Checks the range: `from` before `to`, and a bounded number of months to read when
    /// neither `user_id` nor `action` narrows the listing.
    pub fn check(&self) -> Result<(), ApiError> {
        if self.from > self.to {
            return Err(ApiError::invalid_field("from", "must not be after `to` (default: now)"));
        }
        let months = (self.to.year() - self.from.year()) * 12
            + (i32::from(u8::from(self.to.month())) - i32::from(u8::from(self.from.month())));
        if self.user_id.is_none() && self.action.is_none() && months >= MAX_UNFILTERED_MONTHS {
            return Err(ApiError::invalid_field(
                "from",
                format!(
                    "the range may span at most {MAX_UNFILTERED_MONTHS} months unless you filter \
                     by user_id or action"
                ),
            ));
        }
        Ok(())
    }
}

/// Stores and lists audit records.
pub trait AuditStore: Send + Sync {
    /// Writes the record of an event once: answers `false` when it was already there.
    fn record(&self, record: &AuditRecord) -> impl Future<Output = anyhow::Result<bool>> + Send;

    /// Records matching `query`, newest first.
    fn audit_page(
        &self,
        query: &AuditQuery,
        limit: u32,
        after: Option<Position>,
    ) -> impl Future<Output = anyhow::Result<Page<AuditRecord>>> + Send;
}

/// Records an event delivered by EventBridge, idempotently on its `event_id`.
pub async fn record_event(store: &impl AuditStore, detail: &EventDetail) -> anyhow::Result<bool> {
    if detail.version > crate::events::SCHEMA_VERSION {
        anyhow::bail!("event schema version {} is newer than this consumer", detail.version);
    }
    let fresh = store.record(&AuditRecord::from(detail)).await?;
    tracing::info!(event_id = detail.event_id, action = detail.action.as_str(), fresh, "audited");
    Ok(fresh)
}
