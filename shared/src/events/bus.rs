//! Publishing to EventBridge. `PutEvents` can answer 200 while some entries failed, so every
//! entry's result is read.

use std::future::Future;
use std::sync::Mutex;

use anyhow::Context;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{DomainEvent, SOURCE};

/// The most entries one `PutEvents` call takes.
const MAX_ENTRIES_PER_CALL: usize = 10;

/// Something events are published to.
pub trait EventBus: Send + Sync {
    /// Publishes `events`, answering for each whether it was accepted. `Err` means the call
    /// itself failed (none accepted).
    fn put(&self, events: &[DomainEvent])
    -> impl Future<Output = anyhow::Result<Vec<bool>>> + Send;
}

/// The clinic's EventBridge bus.
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self { client, bus_name: bus_name.into() }
    }

    fn entry(&self, event: &DomainEvent) -> anyhow::Result<PutEventsRequestEntry> {
        Ok(PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(SOURCE)
            .detail_type(event.detail_type())
            .detail(serde_json::to_string(&event.detail)?)
            .time(aws_sdk_eventbridge::primitives::DateTime::from_secs(
                event.detail.occurred_at.unix_timestamp(),
            ))
            .build())
    }
}

impl EventBus for EventBridgeBus {
    async fn put(&self, events: &[DomainEvent]) -> anyhow::Result<Vec<bool>> {
        let mut accepted = Vec::with_capacity(events.len());
        for chunk in events.chunks(MAX_ENTRIES_PER_CALL) {
            let entries =
                chunk.iter().map(|e| self.entry(e)).collect::<anyhow::Result<Vec<_>>>()?;
            let output = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .context("Failed to publish events")?;
            let results = output.entries();
            // An entry without a result, or with an error code, was not accepted.
            accepted.extend((0..chunk.len()).map(|i| {
                results.get(i).is_some_and(|r| r.error_code().is_none() && r.event_id().is_some())
            }));
        }
        Ok(accepted)
    }
}

/// A bus that keeps what it is given, and can be told to fail: for tests.
#[derive(Debug, Default)]
pub struct RecordingBus {
    state: Mutex<Recording>,
}

#[derive(Debug, Default)]
struct Recording {
    published: Vec<DomainEvent>,
    /// Calls still to fail as a whole.
    outages: usize,
    /// Entries still to refuse one by one, as a 200 with failed entries would.
    refusals: usize,
}

impl RecordingBus {
    /// The next `calls` calls fail as a whole.
    pub fn fail_calls(&self, calls: usize) {
        self.lock().outages = calls;
    }

    /// The next `entries` entries are refused inside otherwise successful calls.
    pub fn refuse_entries(&self, entries: usize) {
        self.lock().refusals = entries;
    }

    pub fn published(&self) -> Vec<DomainEvent> {
        self.lock().published.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recording> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl EventBus for RecordingBus {
    async fn put(&self, events: &[DomainEvent]) -> anyhow::Result<Vec<bool>> {
        let mut state = self.lock();
        if state.outages > 0 {
            state.outages -= 1;
            anyhow::bail!("the bus is unavailable");
        }
        let mut accepted = Vec::with_capacity(events.len());
        for event in events {
            if state.refusals > 0 {
                state.refusals -= 1;
                accepted.push(false);
            } else {
                state.published.push(event.clone());
                accepted.push(true);
            }
        }
        Ok(accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Action, EntityType, Trace};
    use crate::ids::RandomIds;
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn events(n: usize) -> Vec<DomainEvent> {
        let trace = Trace::new(None, time::OffsetDateTime::now_utc());
        (0..n)
            .map(|_| {
                DomainEvent::new(
                    &RandomIds,
                    &trace,
                    None,
                    Action::LoginFailure,
                    EntityType::User,
                    None,
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn a_200_with_failed_entries_reports_each_entry() {
        let rule = mock!(Client::put_events).then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(PutEventsResultEntry::builder().event_id("a").build())
                .entries(
                    PutEventsResultEntry::builder()
                        .error_code("InternalFailure")
                        .error_message("try again")
                        .build(),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&rule]);

        let accepted = EventBridgeBus::new(client, "clinic").put(&events(2)).await.unwrap();

        assert_eq!(accepted, vec![true, false]);
    }

    #[tokio::test]
    async fn more_than_ten_events_go_in_calls_of_ten() {
        let rule = mock!(Client::put_events)
            .match_requests(|r| r.entries().len() <= MAX_ENTRIES_PER_CALL)
            .then_output(|| {
                let entry = PutEventsResultEntry::builder().event_id("ok").build();
                PutEventsOutput::builder().set_entries(Some(vec![entry; 10])).build()
            });
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&rule]);

        let accepted = EventBridgeBus::new(client, "clinic").put(&events(15)).await.unwrap();

        assert_eq!(accepted.len(), 15);
        assert!(accepted.iter().all(|a| *a));
        assert_eq!(rule.num_calls(), 2);
    }
}
