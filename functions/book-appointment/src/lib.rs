//! `POST /appointments`: a patient books a doctor for one slot.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::app::Deps;
use shared::appointments::book::{BookingReader, BookingRequest, book};
use shared::appointments::{AppointmentStore, AppointmentView};
use shared::error::ErrorBody;
use shared::events::{EventBus, OutboxStore};
use shared::http::{json_response, parse_json, trace};
use shared::ids::RandomIds;
use shared::users::{Role, UserId};

#[utoipa::path(
    post,
    path = "/appointments",
    operation_id = "bookAppointment",
    tag = "appointments",
    request_body = BookingRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Booked.", body = AppointmentView),
        (status = 401, description = "Missing, invalid or expired token.", body = ErrorBody),
        (status = 403, description = "Only patients book.", body = ErrorBody),
        (status = 404, description = "No bookable doctor has that id.", body = ErrorBody),
        (status = 409, description = "The doctor or the patient is taken in that slot.",
            body = ErrorBody),
        (status = 422, description = "No patient profile yet, or the date-time is malformed, \
            past, too far ahead or off the slot grid.", body = ErrorBody),
    )
)]
pub async fn handle<S, B>(deps: &Deps<S, B>, request: Request) -> Result<Response<Body>, ApiError>
where
    S: AppointmentStore + BookingReader + OutboxStore,
    B: EventBus,
{
    // The body is read first so that the doctor's profile can be read along with the caller's
    // account; its errors are answered only after the caller's.
    let body = parse_json::<BookingRequest>(&request);
    let doctor = body.as_ref().ok().map(|b| UserId::new(b.doctor_id));
    let (signed_in, parties) = deps
        .signed_in_with(&request, async |id| deps.store.account_and_parties(id, doctor).await)
        .await?;
    let caller = signed_in.caller;
    caller.require(&[Role::Patient], "Only patients can book appointments.")?;
    let body = body?;

    let (trace, delivery, minutes) = (trace(&request), deps.delivery(), deps.appointment_minutes);
    let booked =
        book(&deps.store, &RandomIds, &trace, &delivery, caller, parties, body, minutes).await?;

    Ok(json_response(StatusCode::CREATED, &booked))
}
