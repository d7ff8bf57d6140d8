//! The redrive: publishes events still in the outbox because their first publication failed.
//! On a schedule in AWS; locally, `make redrive`.

use shared::events::{Delivery, EventBus, OutboxStore, RedriveReport};
use time::{Duration, OffsetDateTime};

/// Events younger than this may still be on their way from the request that made them.
const SETTLE: Duration = Duration::seconds(30);
/// Events published per run; the next run takes the rest.
const BATCH: u32 = 500;

pub async fn handle(
    delivery: &Delivery<'_, impl EventBus, impl OutboxStore>,
    now: OffsetDateTime,
) -> anyhow::Result<RedriveReport> {
    delivery.redrive(now - SETTLE, BATCH).await
}
