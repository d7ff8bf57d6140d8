//! The analytics updater: EventBridge delivers bookings and cancellations here (the
//! `AnalyticsRule` of `template.yaml`), and each moves the counters of its cell at every
//! resolution, once. Bookings never wait on it, so hot coarse cells cannot slow them down.

use lambda_http::LambdaEvent;
use lambda_http::lambda_runtime::Diagnostic;
use shared::analytics::{StatsChange, StatsStore};
use shared::events::{Envelope, EventDetail, LOCAL_WARMUP_SOURCE, SOURCE};

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("not a clinic booking event: {0}")]
    Malformed(String),
    #[error("the statistics could not be updated")]
    Store(#[source] anyhow::Error),
}

impl From<UpdateError> for Diagnostic {
    fn from(error: UpdateError) -> Self {
        let error_type = match error {
            UpdateError::Malformed(_) => "MalformedEvent",
            UpdateError::Store(_) => "Retryable",
        };
        Diagnostic { error_type: error_type.into(), error_message: error.to_string() }
    }
}

/// Counts one delivered event; answers whether it moved the counters.
pub async fn handle(
    store: &impl StatsStore,
    event: LambdaEvent<Envelope>,
) -> Result<serde_json::Value, UpdateError> {
    let envelope = event.payload;
    if envelope.source == LOCAL_WARMUP_SOURCE {
        return Ok(serde_json::json!({ "warmed": true }));
    }
    if envelope.source != SOURCE {
        return Err(UpdateError::Malformed(format!("source `{}`", envelope.source)));
    }
    let detail: EventDetail = serde_json::from_value(envelope.detail)
        .map_err(|e| UpdateError::Malformed(format!("{} detail: {e}", envelope.detail_type)))?;
    let Some(change) = StatsChange::from_event(&detail) else {
        tracing::info!(event_id = detail.event_id, "not a booking change; ignored");
        return Ok(serde_json::json!({ "event_id": detail.event_id, "counted": false }));
    };

    let counted = store.apply(&change).await.map_err(UpdateError::Store)?;

    tracing::info!(event_id = detail.event_id, cell = %change.cell, counted, "statistics updated");
    Ok(serde_json::json!({ "event_id": detail.event_id, "counted": counted }))
}
