//! `POST /appointments/{id}/cancel`: the patient or the doctor cancels; the slot is freed.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::app::Deps;
use shared::appointments::cancel::cancel;
use shared::appointments::read::caller_and_appointment;
use shared::appointments::{AppointmentStore, AppointmentView};
use shared::error::ErrorBody;
use shared::events::{EventBus, OutboxStore};
use shared::http::{json_response, trace};
use shared::ids::RandomIds;

#[utoipa::path(
    post,
    path = "/appointments/{id}/cancel",
    operation_id = "cancelAppointment",
    tag = "appointments",
    params(("id" = u64, Path, description = "The appointment's id.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled; both slots are free again.",
            body = AppointmentView),
        (status = 401, description = "Missing, invalid or expired token.", body = ErrorBody),
        (status = 403, description = "Not the appointment's patient or doctor.", body = ErrorBody),
        (status = 404, description = "No appointment has that id.", body = ErrorBody),
        (status = 409, description = "Already cancelled.", body = ErrorBody),
        (status = 422, description = "The id is not a positive integer.", body = ErrorBody),
    )
)]
pub async fn handle<S, B>(deps: &Deps<S, B>, request: Request) -> Result<Response<Body>, ApiError>
where
    S: AppointmentStore + OutboxStore,
    B: EventBus,
{
    let (caller, found) = caller_and_appointment(deps, &request).await?;

    let (trace, delivery) = (trace(&request), deps.delivery());
    let cancelled = cancel(&deps.store, &RandomIds, &trace, &delivery, caller, found).await?;

    Ok(json_response(StatusCode::OK, &cancelled))
}
