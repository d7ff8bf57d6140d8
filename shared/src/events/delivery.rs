//! Getting events out, losing none. A change and its event are written in one transaction (the
//! event as an outbox item); the event is then published. The item stays until the audit
//! recorder has recorded the event and clears it, so the request makes no call for it. If
//! publishing fails after retries, or the audit trail has not got the event within the redrive's
//! settling time, the redrive publishes it (again) and clears it. Events without a stored
//! change (a login, a read) go into the outbox only when publishing fails. Delivery is at least
//! once: consumers are idempotent on `event_id`.

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;
use tracing::{error, info, warn};

use super::{DomainEvent, EventBus};

/// Pauses between publishing attempts; a request waits at most their sum.
const BACKOFF_MS: [u64; 3] = [0, 50, 200];

/// The outbox: events kept with the change they report until they are published.
pub trait OutboxStore: Send + Sync {
    /// Keeps an event that has no transaction of its own.
    fn keep(&self, event: &DomainEvent) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Forgets a published event.
    fn clear(&self, event: &DomainEvent) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Kept events that occurred before `before`, oldest first, at most `limit`.
    fn pending(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> impl Future<Output = anyhow::Result<Vec<DomainEvent>>> + Send;
}

/// Publishes events through a bus, with the outbox as the safety net.
pub struct Delivery<'a, B, S> {
    pub bus: &'a B,
    pub outbox: &'a S,
}

/// What a redrive did.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RedriveReport {
    pub published: usize,
    pub still_pending: usize,
}

impl<B: EventBus, S: OutboxStore> Delivery<'_, B, S> {
    /// For an event whose outbox item was written with its change. Its item is left for the
    /// audit recorder to clear once the event is recorded (see [`EventDetail::kept_with_change`]).
    ///
    /// [`EventDetail::kept_with_change`]: super::EventDetail::kept_with_change
    pub async fn after_commit(&self, event: DomainEvent) {
        if !publish(self.bus, std::slice::from_ref(&event)).await.is_empty() {
            warn!(event_id = event.id(), "event kept in the outbox for the redrive");
        }
    }

    /// For an event with no stored change: kept in the outbox only if it cannot be published.
    pub async fn standalone(&self, event: DomainEvent) {
        if publish(self.bus, std::slice::from_ref(&event)).await.is_empty() {
            return;
        }
        match self.outbox.keep(&event).await {
            Ok(()) => warn!(event_id = event.id(), "event kept in the outbox for the redrive"),
            Err(e) => error!(event_id = event.id(), error.cause_chain = ?e, "event lost"),
        }
    }

    /// Publishes kept events older than `before` (younger ones may still be on their way).
    pub async fn redrive(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> anyhow::Result<RedriveReport> {
        let pending = self.outbox.pending(before, limit).await?;
        let failed = publish(self.bus, &pending).await;
        for event in pending.iter().filter(|e| !failed.iter().any(|f| f.id() == e.id())) {
            self.clear(event).await;
        }
        let report =
            RedriveReport { published: pending.len() - failed.len(), still_pending: failed.len() };
        info!(published = report.published, still_pending = report.still_pending, "redrive");
        Ok(report)
    }

    async fn clear(&self, event: &DomainEvent) {
        clear_outbox_item(self.outbox, event).await;
    }
}

/// Forgets a published event's outbox item (the redrive after publishing it, the audit recorder
/// after recording it). A failure is only logged: a leftover item means the redrive publishes
/// the event once more, and consumers are idempotent.
pub async fn clear_outbox_item(outbox: &impl OutboxStore, event: &DomainEvent) {
    if let Err(e) = outbox.clear(event).await {
        warn!(event_id = event.id(), error.cause_chain = ?e, "outbox item not cleared");
    }
}

/// Publishes with retries of the entries that failed; answers those that never got through.
async fn publish(bus: &impl EventBus, events: &[DomainEvent]) -> Vec<DomainEvent> {
    let mut remaining: Vec<DomainEvent> = events.to_vec();
    for pause_ms in BACKOFF_MS {
        if remaining.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        match bus.put(&remaining).await {
            Ok(accepted) => {
                let mut flags = accepted.into_iter().chain(std::iter::repeat(false));
                remaining.retain(|_| !flags.next().unwrap_or(false));
            }
            Err(e) => warn!(error.cause_chain = ?e, "publishing events failed; retrying"),
        }
    }
    remaining
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Action, EntityType, RecordingBus, Trace};
    use crate::ids::RandomIds;
    use std::sync::Mutex;

    #[derive(Default)]
    struct MemoryOutbox(Mutex<Vec<DomainEvent>>);

    impl OutboxStore for MemoryOutbox {
        async fn keep(&self, event: &DomainEvent) -> anyhow::Result<()> {
            self.0.lock().unwrap().push(event.clone());
            Ok(())
        }

        async fn clear(&self, event: &DomainEvent) -> anyhow::Result<()> {
            self.0.lock().unwrap().retain(|e| e.id() != event.id());
            Ok(())
        }

        async fn pending(&self, _: OffsetDateTime, limit: u32) -> anyhow::Result<Vec<DomainEvent>> {
            Ok(self.0.lock().unwrap().iter().take(limit as usize).cloned().collect())
        }
    }

    fn event() -> DomainEvent {
        let trace = Trace::new(Some("req-1".into()), OffsetDateTime::now_utc());
        DomainEvent::new(&RandomIds, &trace, None, Action::LoginFailure, EntityType::User, None)
    }

    /// An event written with its change: it is in the outbox before delivery starts.
    async fn committed(outbox: &MemoryOutbox) -> DomainEvent {
        let event = event();
        outbox.keep(&event).await.unwrap();
        event
    }

    #[tokio::test]
    async fn a_published_event_stays_in_the_outbox_for_the_audit_recorder_to_clear() {
        let (bus, outbox) = (RecordingBus::default(), MemoryOutbox::default());
        let event = committed(&outbox).await;

        Delivery { bus: &bus, outbox: &outbox }.after_commit(event.clone()).await;

        assert_eq!(bus.published(), vec![event.clone()]);
        assert_eq!(outbox.0.lock().unwrap().clone(), vec![event]);
    }

    #[tokio::test]
    async fn entries_refused_inside_a_successful_call_are_retried() {
        let (bus, outbox) = (RecordingBus::default(), MemoryOutbox::default());
        bus.refuse_entries(2);
        let event = committed(&outbox).await;

        Delivery { bus: &bus, outbox: &outbox }.after_commit(event.clone()).await;

        assert_eq!(bus.published(), vec![event]);
    }

    #[tokio::test]
    async fn during_an_outage_the_event_stays_and_the_redrive_publishes_it_as_built() {
        let (bus, outbox) = (RecordingBus::default(), MemoryOutbox::default());
        bus.fail_calls(BACKOFF_MS.len());
        let event = committed(&outbox).await;
        let delivery = Delivery { bus: &bus, outbox: &outbox };

        delivery.after_commit(event.clone()).await;
        assert!(bus.published().is_empty());
        assert_eq!(outbox.0.lock().unwrap().clone(), vec![event.clone()]);

        let report = delivery.redrive(OffsetDateTime::now_utc(), 100).await.unwrap();

        assert_eq!(report, RedriveReport { published: 1, still_pending: 0 });
        assert_eq!(bus.published(), vec![event]);
        assert!(outbox.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_standalone_event_is_kept_only_when_it_cannot_be_published() {
        let (bus, outbox) = (RecordingBus::default(), MemoryOutbox::default());
        let delivery = Delivery { bus: &bus, outbox: &outbox };

        delivery.standalone(event()).await;
        assert!(outbox.0.lock().unwrap().is_empty());

        bus.fail_calls(BACKOFF_MS.len());
        let lost_for_now = event();
        delivery.standalone(lost_for_now.clone()).await;
        assert_eq!(outbox.0.lock().unwrap().clone(), vec![lost_for_now]);
    }

    #[tokio::test]
    async fn a_redrive_keeps_what_is_still_refused() {
        let (bus, outbox) = (RecordingBus::default(), MemoryOutbox::default());
        for _ in 0..3 {
            committed(&outbox).await;
        }
        bus.refuse_entries(3 * BACKOFF_MS.len());

        let report =
            Delivery { bus: &bus, outbox: &outbox }.redrive(OffsetDateTime::now_utc(), 10).await;

        assert_eq!(report.unwrap(), RedriveReport { published: 0, still_pending: 3 });
        assert_eq!(outbox.0.lock().unwrap().len(), 3);
    }

    /// Through the real EventBridge client, with the SDK's mock transport: an outage (service
    /// errors that outlast the SDK's own retries), then entries refused inside a 200, then
    /// recovery. The event that finally goes out is the one that was built, field for field.
    #[tokio::test]
    async fn through_the_sdk_an_outage_then_partial_failures_still_publish_the_event_as_built() {
        use aws_sdk_eventbridge::operation::put_events::{PutEventsError, PutEventsOutput};
        use aws_sdk_eventbridge::types::PutEventsResultEntry;
        use aws_sdk_eventbridge::types::error::InternalException;
        use aws_smithy_mocks::{RuleMode, mock, mock_client};

        let event = event();
        let expected = serde_json::to_string(&event.detail).unwrap();
        let outage = mock!(aws_sdk_eventbridge::Client::put_events)
            .sequence()
            .error(|| PutEventsError::InternalException(InternalException::builder().build()))
            .times(3)
            .build();
        let refused = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| {
            let entry = PutEventsResultEntry::builder().error_code("ThrottlingException").build();
            PutEventsOutput::builder().failed_entry_count(1).entries(entry).build()
        });
        let accepted = mock!(aws_sdk_eventbridge::Client::put_events)
            .match_requests(move |r| {
                r.entries().len() == 1 && r.entries()[0].detail() == Some(expected.as_str())
            })
            .then_output(|| {
                let entry = PutEventsResultEntry::builder().event_id("eb-1").build();
                PutEventsOutput::builder().entries(entry).build()
            });
        let client = mock_client!(
            aws_sdk_eventbridge,
            RuleMode::Sequential,
            [&outage, &refused, &refused, &accepted]
        );
        let bus = crate::events::EventBridgeBus::new(client, "clinic");
        let outbox = MemoryOutbox::default();
        outbox.keep(&event).await.unwrap();
        let delivery = Delivery { bus: &bus, outbox: &outbox };

        delivery.after_commit(event.clone()).await;
        assert_eq!(outbox.0.lock().unwrap().len(), 1, "kept through the outage");
        let report = delivery.redrive(OffsetDateTime::now_utc(), 10).await.unwrap();

        assert_eq!(report, RedriveReport { published: 1, still_pending: 0 });
        assert_eq!(outage.num_calls(), 3);
        assert!(refused.num_calls() >= 1);
        assert_eq!(accepted.num_calls(), 1);
        assert!(outbox.0.lock().unwrap().is_empty());
    }
}
