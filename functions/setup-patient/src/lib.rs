//! `POST /setup-patient`: stores the patient's resolution-7 H3 cell (never the coordinates).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::app::Deps;
use shared::error::ErrorBody;
use shared::events::{EventBus, OutboxStore};
use shared::http::{json_response, trace};
use shared::ids::RandomIds;
use shared::profiles::patient::{PatientSetup, PatientStore, setup_patient};
use shared::profiles::{Coordinates, point_from_request};
use shared::users::UserReader;

#[utoipa::path(
    post,
    path = "/setup-patient",
    operation_id = "setupPatient",
    tag = "patients",
    params(
        ("latitude" = Option<f64>, Query, description = "Degrees, -90 to 90."),
        ("longitude" = Option<f64>, Query, description = "Degrees, -180 to 180."),
    ),
    request_body(
        content = Option<Coordinates>,
        description = "The coordinates, when the query string has none."
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The profile was created.", body = PatientSetup),
        (status = 200, description = "The patient moved to a new cell.", body = PatientSetup),
        (status = 401, description = "Missing, invalid or expired token.", body = ErrorBody),
        (status = 403, description = "Only patients have a patient profile.", body = ErrorBody),
        (status = 422, description = "A coordinate is missing or out of range.", body = ErrorBody),
    )
)]
pub async fn handle<S, B>(deps: &Deps<S, B>, request: Request) -> Result<Response<Body>, ApiError>
where
    S: PatientStore + UserReader + OutboxStore,
    B: EventBus,
{
    let signed_in = deps.signed_in(&request).await?;
    let patients = [shared::users::Role::Patient];
    signed_in.caller.require(&patients, "Only patients can set up a patient profile.")?;
    let point = point_from_request(&request)?;

    let trace = trace(&request);
    let setup =
        setup_patient(&deps.store, &RandomIds, &trace, &deps.delivery(), &signed_in, point).await?;

    let status = if setup.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(json_response(status, &setup))
}
