//! Patient and doctor profiles: where each one is, as a resolution-7 H3 cell. Raw coordinates
//! are never stored: the cell (about 5 km²) is all that booking and analytics need.

pub mod doctor;
pub mod patient;

use lambda_http::{Request, RequestExt};
use serde::Deserialize;

use crate::error::{ApiError, FieldError};
use crate::geo::GeoPoint;

/// Coordinates in a JSON body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Coordinates {
    #[schema(example = 40.7128)]
    pub latitude: Option<f64>,
    #[schema(example = -74.006)]
    pub longitude: Option<f64>,
}

/// Coordinates from the query string (`?latitude=..&longitude=..`, as the predecessor took
/// them) or, when the query has neither, from a JSON body.
pub fn point_from_request(request: &Request) -> Result<GeoPoint, ApiError> {
    let query = request.query_string_parameters();
    let (lat, lng) = (query.first("latitude"), query.first("longitude"));
    let (latitude, longitude) = if lat.is_some() || lng.is_some() {
        let lat = parse_number(lat, "latitude");
        let lng = parse_number(lng, "longitude");
        match (lat, lng) {
            (Ok(lat), Ok(lng)) => (lat, lng),
            (lat, lng) => {
                return Err(ApiError::invalid_fields(
                    [lat.err(), lng.err()].into_iter().flatten().collect(),
                ));
            }
        }
    } else {
        let body: Coordinates = crate::http::parse_json(request)?;
        (body.latitude, body.longitude)
    };
    GeoPoint::parse(latitude, longitude, ("latitude", "longitude"))
        .map_err(ApiError::invalid_fields)
}

/// A decimal number from a query parameter.
pub fn parse_number(raw: Option<&str>, field: &str) -> Result<Option<f64>, FieldError> {
    match raw {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| FieldError::new(field, "must be a number in degrees")),
    }
}
