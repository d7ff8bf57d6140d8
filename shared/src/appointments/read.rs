//! `GET /appointments/my` and `GET /appointments/{id}`.

use lambda_http::{Request, RequestExt};

use super::{Appointment, AppointmentId, AppointmentStore, Party, When};
use crate::app::Deps;
use crate::auth::AuthedUser;
use crate::error::ApiError;
use crate::events::{Delivery, EntityType, EventBus, OutboxStore, Trace, health_data_read};
use crate::ids::IdGen;
use crate::pagination::{Page, Position};
use crate::users::Role;

/// The caller's appointments: a patient's bookings or a doctor's schedule. A doctor reading
/// patients' appointments is published as a read of health data.
#[allow(clippy::too_many_arguments, reason = "each is a distinct input of the read")]
pub async fn my_appointments<S, B>(
    store: &S,
    ids: &impl IdGen,
    trace: &Trace,
    delivery: &Delivery<'_, B, S>,
    caller: AuthedUser,
    when: When,
    limit: u32,
    after: Option<Position>,
) -> Result<Page<Appointment>, ApiError>
where
    S: AppointmentStore + OutboxStore,
    B: EventBus,
{
    let party = match caller.role {
        Role::Patient => Party::Patient(caller.id),
        Role::Doctor => Party::Doctor(caller.id),
        Role::Admin => {
            return Err(ApiError::Forbidden(
                "Only patients and doctors have appointments of their own.".into(),
            ));
        }
    };
    let page = store.appointments_of(party, when, trace.now, limit, after).await?;
    if caller.role == Role::Doctor {
        let read = health_data_read(ids, trace, caller, EntityType::Appointment, None);
        delivery.standalone(read).await;
    }
    Ok(page)
}

/// The appointment `found` for the request (see [`AppointmentStore::account_and_appointment`]),
/// for its patient or doctor; the doctor's read is published.
pub async fn read_appointment<S, B>(
    ids: &impl IdGen,
    trace: &Trace,
    delivery: &Delivery<'_, B, S>,
    caller: AuthedUser,
    found: Option<Appointment>,
) -> Result<Appointment, ApiError>
where
    S: OutboxStore,
    B: EventBus,
{
    let appointment = visible_to(caller, found)?;
    if caller.role == Role::Doctor {
        let entity = Some(appointment.id.to_string());
        delivery
            .standalone(health_data_read(ids, trace, caller, EntityType::Appointment, entity))
            .await;
    }
    Ok(appointment)
}

/// The caller and the appointment that the request's `{id}` names, read together (see
/// [`AppointmentStore::account_and_appointment`]). A bad token is answered before a bad id.
pub async fn caller_and_appointment<S, B>(
    deps: &Deps<S, B>,
    request: &Request,
) -> Result<(AuthedUser, Option<Appointment>), ApiError>
where
    S: AppointmentStore,
{
    let id = parse_id(request.path_parameters().first("id"));
    let wanted = id.as_ref().ok().copied();
    let (signed_in, found) = deps
        .signed_in_with(request, async |caller| {
            deps.store.account_and_appointment(caller, wanted).await
        })
        .await?;
    id?;
    Ok((signed_in.caller, found))
}

/// The appointment `found` for the request, for its patient or its doctor only.
pub fn visible_to(caller: AuthedUser, found: Option<Appointment>) -> Result<Appointment, ApiError> {
    let appointment =
        found.ok_or_else(|| ApiError::NotFound("No appointment has that id.".into()))?;
    if caller.id != appointment.patient_id && caller.id != appointment.doctor_id {
        return Err(ApiError::Forbidden(
            "Only the appointment's patient or doctor may see or change it.".into(),
        ));
    }
    Ok(appointment)
}

/// Reads an appointment id from a path parameter.
pub fn parse_id(raw: Option<&str>) -> Result<AppointmentId, ApiError> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<AppointmentId>().ok())
        .filter(|id| (1..=crate::ids::MAX_ID).contains(&id.get()))
        .ok_or_else(|| ApiError::invalid_field("id", "must be a positive integer"))
}
