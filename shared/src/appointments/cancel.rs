//! `POST /appointments/{id}/cancel`: the patient or the doctor frees the slot.

use std::time::Duration;

use super::book::appointment_event;
use super::read::visible_to;
use super::{Appointment, AppointmentStore, AppointmentView, CancelConflict, Status};
use crate::auth::AuthedUser;
use crate::error::ApiError;
use crate::events::{Action, Delivery, EventBus, OutboxStore, Trace};
use crate::ids::IdGen;

const WRITE_ATTEMPTS: u32 = 4;

/// Cancels the scheduled appointment `found` for the request (see
/// [`AppointmentStore::account_and_appointment`]); both slot items are deleted in the same
/// transaction, so the slot can be booked again.
pub async fn cancel<S, B>(
    store: &S,
    ids: &impl IdGen,
    trace: &Trace,
    delivery: &Delivery<'_, B, S>,
    caller: AuthedUser,
    found: Option<Appointment>,
) -> Result<AppointmentView, ApiError>
where
    S: AppointmentStore + OutboxStore,
    B: EventBus,
{
    let mut appointment = visible_to(caller, found)?;
    let id = appointment.id;
    if appointment.status != Status::Scheduled {
        return Err(already_cancelled());
    }

    let mut cancelled = appointment.clone();
    cancelled.status = Status::Cancelled;
    for attempt in 1..=WRITE_ATTEMPTS {
        let event = appointment_event(ids, trace, caller, Action::CancelAppointment, &cancelled);
        match store.cancel(&appointment, caller.id, trace.now, &event).await {
            Ok(()) => {
                tracing::info!(appointment_id = %id, "appointment cancelled");
                delivery.after_commit(event).await;
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
