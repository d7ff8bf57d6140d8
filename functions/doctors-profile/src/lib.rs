//! `POST /doctors/profile`: a doctor's specialization and practice cell; only then is the
//! doctor bookable.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::app::Deps;
use shared::error::ErrorBody;
use shared::events::{EventBus, OutboxStore};
use shared::http::{json_response, parse_json, trace};
use shared::ids::RandomIds;
use shared::profiles::doctor::{
    DoctorProfileRequest, DoctorStore, DoctorSummary, NewDoctorProfile, set_doctor_profile,
};
use shared::users::{Role, UserReader};

#[utoipa::path(
    post,
    path = "/doctors/profile",
    operation_id = "setDoctorProfile",
    tag = "doctors",
    request_body = DoctorProfileRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The profile was created.", body = DoctorSummary),
        (status = 200, description = "The profile was updated.", body = DoctorSummary),
        (status = 401, description = "Missing, invalid or expired token.", body = ErrorBody),
        (status = 403, description = "Only doctors have a doctor profile.", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid.", body = ErrorBody),
    )
)]
pub async fn handle<S, B>(deps: &Deps<S, B>, request: Request) -> Result<Response<Body>, ApiError>
where
    S: DoctorStore + UserReader + OutboxStore,
    B: EventBus,
{
    let signed_in = deps.signed_in(&request).await?;
    signed_in.caller.require(&[Role::Doctor], "Only doctors can set up a doctor profile.")?;
    let profile = NewDoctorProfile::try_from(parse_json::<DoctorProfileRequest>(&request)?)?;

    let (trace, delivery) = (trace(&request), deps.delivery());
    let (summary, created) =
        set_doctor_profile(&deps.store, &RandomIds, &trace, &delivery, &signed_in, profile).await?;

    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(json_response(status, &summary))
}
