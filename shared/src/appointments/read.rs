//! `GET /appointments/my` and `GET /appointments/{id}`.

use time::OffsetDateTime;

use super::{Appointment, AppointmentId, AppointmentStore, Party, When};
use crate::auth::AuthedUser;
use crate::error::ApiError;
use crate::pagination::{Page, Position};
use crate::users::Role;

/// The caller's appointments: a patient's bookings or a doctor's schedule.
pub async fn my_appointments(
    store: &impl AppointmentStore,
    caller: AuthedUser,
    when: When,
    now: OffsetDateTime,
    limit: u32,
    after: Option<Position>,
) -> Result<Page<Appointment>, ApiError> {
    let party = match caller.role {
        Role::Patient => Party::Patient(caller.id),
        Role::Doctor => Party::Doctor(caller.id),
        Role::Admin => {
            return Err(ApiError::Forbidden(
                "Only patients and doctors have appointments of their own.".into(),
            ));
        }
    };
    Ok(store.appointments_of(party, when, now, limit, after).await?)
}

/// One appointment, for its patient or its doctor only.
pub async fn appointment_for(
    store: &impl AppointmentStore,
    caller: AuthedUser,
    id: AppointmentId,
) -> Result<Appointment, ApiError> {
    let appointment = store
        .appointment(id)
        .await?
        .ok_or_else(|| ApiError::NotFound("No appointment has that id.".into()))?;
    if caller.id != appointment.patient_id && caller.id != appointment.doctor_id {
        return Err(ApiError::Forbidden(
            "Only the appointment's patient or doctor may see or change it.".into(),
        ));
    }
    Ok(appointment)
}

/// Reads an appointment id from a path parameter.
pub fn parse_id(raw: Option<&str>) -> Result<AppointmentId, ApiError> {
    raw.and_then(|s| s.trim().parse::<AppointmentId>().ok())
        .filter(|id| (1..=crate::ids::MAX_ID).contains(&id.get()))
        .ok_or_else(|| ApiError::invalid_field("id", "must be a positive integer"))
}
