//! `GET /doctors`: bookable doctors, by specialization or near a point.

use lambda_http::{Body, Request, RequestExt, Response};
use shared::ApiError;
use shared::app::Deps;
use shared::error::ErrorBody;
use shared::geo::GeoPoint;
use shared::pagination::{page_request, page_response};
use shared::profiles::doctor::{
    DoctorFilter, DoctorStore, DoctorSummary, MAX_NEARBY_RINGS, list_doctors, parse_specialization,
};
use shared::profiles::parse_number;
use shared::users::UserReader;

#[utoipa::path(
    get,
    path = "/doctors",
    operation_id = "listDoctors",
    tag = "doctors",
    params(
        ("specialization" = Option<String>, Query, description = "Exact, without case."),
        ("near_lat" = Option<f64>, Query, description = "With `near_lng`: search near a point."),
        ("near_lng" = Option<f64>, Query),
        ("k" = Option<u32>, Query, description = "Rings around the point, 0 to 5 (default 1)."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Default 50."),
        ("next" = Option<String>, Query, description = "The cursor from a `Link` header."),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Doctors by name, or nearest ring first. A `Link` header \
            with `rel=\"next\"` gives the next page.", body = [DoctorSummary]),
        (status = 401, description = "Missing, invalid or expired token.", body = ErrorBody),
        (status = 422, description = "A filter is invalid.", body = ErrorBody),
    )
)]
pub async fn handle<S: DoctorStore + UserReader, B>(
    deps: &Deps<S, B>,
    request: Request,
) -> Result<Response<Body>, ApiError> {
    let caller = deps.authenticate(&request).await?;
    let filter = filter(&request)?;
    let list = list_name(&filter);
    let (limit, after) = page_request(&request, &deps.cursors, caller.id, &list)?;

    let page = list_doctors(&deps.store, &filter, limit, after).await?;

    Ok(page_response(&request, &deps.cursors, caller.id, &list, &page.items, page.next))
}

fn filter(request: &Request) -> Result<DoctorFilter, ApiError> {
    let query = request.query_string_parameters();
    let specialization = query
        .first("specialization")
        .map(parse_specialization)
        .transpose()
        .map_err(|e| ApiError::invalid_fields(vec![e]))?;
    let (lat, lng) = (query.first("near_lat"), query.first("near_lng"));
    if lat.is_none() && lng.is_none() {
        if query.first("k").is_some() {
            return Err(ApiError::invalid_field("k", "needs near_lat and near_lng"));
        }
        return Ok(DoctorFilter { specialization, near: None });
    }
    let lat = parse_number(lat, "near_lat");
    let lng = parse_number(lng, "near_lng");
    let (lat, lng) = match (lat, lng) {
        (Ok(lat), Ok(lng)) => (lat, lng),
        (lat, lng) => {
            let errors = [lat.err(), lng.err()].into_iter().flatten().collect();
            return Err(ApiError::invalid_fields(errors));
        }
    };
    let point =
        GeoPoint::parse(lat, lng, ("near_lat", "near_lng")).map_err(ApiError::invalid_fields)?;
    let k = match query.first("k") {
        None => 1,
        Some(raw) => {
            raw.trim().parse::<u32>().ok().filter(|k| *k <= MAX_NEARBY_RINGS).ok_or_else(|| {
                ApiError::invalid_field(
                    "k",
                    format!("must be a whole number from 0 to {MAX_NEARBY_RINGS}"),
                )
            })?
        }
    };
    Ok(DoctorFilter { specialization, near: Some((point.cell(), k)) })
}

/// The list a cursor belongs to: the filters, so a cursor cannot jump to another list.
fn list_name(filter: &DoctorFilter) -> String {
    let specialization = filter.specialization.as_deref().map(str::to_lowercase);
    match filter.near {
        None => format!("doctors:{}", specialization.unwrap_or_default()),
        Some((cell, k)) => format!("doctors:{}:{cell}:{k}", specialization.unwrap_or_default()),
    }
}
