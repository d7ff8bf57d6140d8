//! The audit recorder: EventBridge delivers every clinic event here (the `AuditRule` of
//! `template.yaml`), and each becomes one audit record. A redelivered event leaves one record.
//! Once an event written with its change is recorded, its outbox item is cleared: the request
//! that made it does not wait for that, and until then the redrive can publish it again.

use lambda_http::LambdaEvent;
use lambda_http::lambda_runtime::Diagnostic;
use shared::audit::{AuditStore, record_event};
use shared::events::{
    DomainEvent, Envelope, EventDetail, LOCAL_WARMUP_SOURCE, OutboxStore, SOURCE, clear_outbox_item,
};

/// Why an event was not recorded. Both make the invocation fail: a store failure is retried,
/// and a malformed event ends, after the retries, in the function's on-failure destination.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("not a clinic event: {0}")]
    Malformed(String),
    #[error("the audit record could not be written")]
    Store(#[source] anyhow::Error),
}

impl From<RecordError> for Diagnostic {
    fn from(error: RecordError) -> Self {
        let error_type = match error {
            RecordError::Malformed(_) => "MalformedEvent",
            RecordError::Store(_) => "Retryable",
        };
        Diagnostic { error_type: error_type.into(), error_message: error.to_string() }
    }
}

/// Records one delivered event, then clears its outbox item; answers whether it was new.
pub async fn handle(
    store: &(impl AuditStore + OutboxStore),
    event: LambdaEvent<Envelope>,
) -> Result<serde_json::Value, RecordError> {
    let envelope = event.payload;
    if envelope.source == LOCAL_WARMUP_SOURCE {
        return Ok(serde_json::json!({ "warmed": true }));
    }
    if envelope.source != SOURCE {
        return Err(RecordError::Malformed(format!("source `{}`", envelope.source)));
    }
    let detail: EventDetail = serde_json::from_value(envelope.detail)
        .map_err(|e| RecordError::Malformed(format!("{} detail: {e}", envelope.detail_type)))?;

    let fresh = record_event(store, &detail).await.map_err(RecordError::Store)?;
    let event_id = detail.event_id;
    if detail.kept_with_change() {
        // In the audit trail now: the outbox item has done its work.
        clear_outbox_item(store, &DomainEvent { detail }).await;
    }

    Ok(serde_json::json!({ "event_id": event_id, "recorded": fresh }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::events::Action;
    use std::path::Path;

    fn samples() -> Vec<(String, String)> {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/eventbridge");
        std::fs::read_dir(folder)
            .expect("the samples folder")
            .map(|entry| {
                let path = entry.expect("an entry").path();
                (path.display().to_string(), std::fs::read_to_string(&path).expect("readable"))
            })
            .collect()
    }

    #[test]
    fn every_action_has_a_sample_that_parses_with_its_detail_type() {
        let mut seen = Vec::new();

        for (path, text) in samples() {
            let envelope: Envelope = serde_json::from_str(&text).expect(&path);
            let detail: EventDetail = serde_json::from_value(envelope.detail).expect(&path);

            assert_eq!(envelope.source, SOURCE, "{path}");
            assert_eq!(envelope.detail_type, detail.action.detail_type(), "{path}");
            seen.push(detail.action);
        }
        for action in Action::ALL {
            assert!(seen.contains(&action), "no sample for {}", action.as_str());
        }
    }

    #[test]
    fn booking_samples_carry_what_analytics_needs() {
        for (path, text) in samples() {
            let envelope: Envelope = serde_json::from_str(&text).expect(&path);
            let detail: EventDetail = serde_json::from_value(envelope.detail).expect(&path);
            if matches!(detail.action, Action::CreateAppointment | Action::CancelAppointment) {
                let facts = detail.appointment.expect("appointment facts");
                assert_eq!(Some(facts.h3_index), detail.h3_index, "{path}");
            }
        }
    }
}
