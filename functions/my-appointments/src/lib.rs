//! `GET /appointments/my`: a patient's bookings or a doctor's schedule.

use lambda_http::{Body, Request, RequestExt, Response};
use shared::ApiError;
use shared::app::Deps;
use shared::appointments::read::my_appointments;
use shared::appointments::{AppointmentStore, AppointmentView, When};
use shared::error::ErrorBody;
use shared::events::{EventBus, OutboxStore};
use shared::http::trace;
use shared::ids::RandomIds;
use shared::pagination::{page_request, page_response};
use shared::users::UserReader;

#[utoipa::path(
    get,
    path = "/appointments/my",
    operation_id = "myAppointments",
    tag = "appointments",
    params(
        (
            "when" = inline(Option<When>),
            Query,
            description = "`upcoming`, `past` or `all` (default)."
        ),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Default 50."),
        ("next" = Option<String>, Query, description = "The cursor from a `Link` header."),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "By start time, ascending (`past`: descending), cancelled \
            ones included. A `Link` header with `rel=\"next\"` gives the next page.",
            body = [AppointmentView]),
        (status = 401, description = "Missing, invalid or expired token.", body = ErrorBody),
        (status = 403, description = "Admins have no appointments of their own.",
            body = ErrorBody),
        (status = 422, description = "A parameter is invalid.", body = ErrorBody),
    )
)]
pub async fn handle<S, B>(deps: &Deps<S, B>, request: Request) -> Result<Response<Body>, ApiError>
where
    S: AppointmentStore + OutboxStore + UserReader,
    B: EventBus,
{
    let caller = deps.authenticate(&request).await?;
    let when = parse_when(request.query_string_parameters().first("when"))?;
    let list = format!("appointments/my:{}", when.as_str());
    let (limit, after) = page_request(&request, &deps.cursors, caller.id, &list)?;

    let (trace, delivery) = (trace(&request), deps.delivery());
    let page =
        my_appointments(&deps.store, &RandomIds, &trace, &delivery, caller, when, limit, after)
            .await?;

    let items: Vec<AppointmentView> = page.items.into_iter().map(Into::into).collect();
    Ok(page_response(&request, &deps.cursors, caller.id, &list, &items, page.next))
}

fn parse_when(raw: Option<&str>) -> Result<When, ApiError> {
    match raw.map(str::trim) {
        None | Some("all") => Ok(When::All),
        Some("upcoming") => Ok(When::Upcoming),
        Some("past") => Ok(When::Past),
        Some(_) => Err(ApiError::invalid_field("when", "must be upcoming, past or all")),
    }
}
