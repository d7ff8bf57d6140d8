//! `POST /appointments/{id}/cancel`: the patient or the doctor frees the slot.

use std::time::Duration;

use time::OffsetDateTime;

use super::read::appointment_for;
use super::{AppointmentId, AppointmentStore, AppointmentView, CancelConflict, Status};
use crate::auth::AuthedUser;
use crate::error::ApiError;

const WRITE_ATTEMPTS: u32 = 4;

/// Cancels a scheduled appointment; both slot items are deleted in the same transaction, so the
/// slot can be booked again.
pub async fn cancel(
    store: &impl AppointmentStore,
    caller: AuthedUser,
    id: AppointmentId,
    now: OffsetDateTime,
) -> Result<AppointmentView, ApiError> {
    let mut appointment = appointment_for(store, caller, id).await?;
    if appointment.status != Status::Scheduled {
        return Err(already_cancelled());
    }

    for attempt in 1..=WRITE_ATTEMPTS {
        match store.cancel(&appointment, caller.id, now).await {
            Ok(()) => {
                tracing::info!(appointment_id = %id, "appointment cancelled");
                appointment.status = Status::Cancelled;
                return Ok(appointment.into());
            }
            Err(CancelConflict::NotScheduled) => return Err(already_cancelled()),
            Err(CancelConflict::Contended) => {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
            }
            Err(CancelConflict::Unexpected(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::Busy)
}

fn already_cancelled() -> ApiError {
    ApiError::Conflict("The appointment is already cancelled.".into())
}
