//! `GET /analytics`: the busiest regions of all time at one resolution, as a list or as GeoJSON
//! hexagons for a map tool (kepler.gl, geojson.io, QGIS).

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};
use shared::ApiError;
use shared::analytics::{CellTotal, MAX_BUSIEST, RESOLUTIONS, StatsStore};
use shared::app::Deps;
use shared::error::ErrorBody;
use shared::events::{EntityType, EventBus, OutboxStore, health_data_read};
use shared::http::{json_response, trace};
use shared::ids::RandomIds;
use shared::users::{Role, UserReader};

const DEFAULT_LIMIT: u32 = 20;

#[utoipa::path(
    get,
    path = "/analytics",
    operation_id = "busiestRegions",
    tag = "analytics",
    params(
        ("resolution" = Option<u8>, Query, description = "0 to 7 (default 7)."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Default 20."),
        ("format" = Option<String>, Query, description = "`json` (default) or `geojson`."),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The busiest regions, busiest first; with `format=geojson` \
            a GeoJSON FeatureCollection of their hexagons with `total` properties.",
            body = [CellTotal]),
        (status = 401, description = "Missing, invalid or expired token.", body = ErrorBody),
        (status = 403, description = "Admins only.", body = ErrorBody),
        (status = 422, description = "A parameter is out of range.", body = ErrorBody),
    )
)]
pub async fn handle<S, B>(deps: &Deps<S, B>, request: Request) -> Result<Response<Body>, ApiError>
where
    S: StatsStore + OutboxStore + UserReader,
    B: EventBus,
{
    let caller = deps.authenticate(&request).await?;
    caller.require(&[Role::Admin], "Only Admins can read analytics.")?;
    let (resolution, limit, geojson) = parameters(&request)?;

    let busiest = deps.store.busiest(resolution, limit).await?;
    let trace = trace(&request);
    let read = health_data_read(&RandomIds, &trace, caller, EntityType::Analytics, None);
    deps.delivery().standalone(read).await;

    let regions: Vec<CellTotal> = busiest
        .into_iter()
        .map(|(cell, counts)| CellTotal {
            h3_index: cell,
            resolution: cell.resolution(),
            total: counts.total(),
        })
        .collect();
    if !geojson {
        return Ok(json_response(StatusCode::OK, &regions));
    }
    let mut response = json_response(StatusCode::OK, &feature_collection(&regions));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/geo+json"));
    Ok(response)
}

fn parameters(request: &Request) -> Result<(u8, u32, bool), ApiError> {
    let query = request.query_string_parameters();
    let resolution = match query.first("resolution") {
        None => *RESOLUTIONS.end(),
        Some(raw) => {
            raw.trim().parse::<u8>().ok().filter(|r| RESOLUTIONS.contains(r)).ok_or_else(|| {
                ApiError::invalid_field("resolution", "must be a whole number from 0 to 7")
            })?
        }
    };
    let limit = match query.first("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => {
            raw.trim().parse::<u32>().ok().filter(|l| (1..=MAX_BUSIEST).contains(l)).ok_or_else(
                || {
                    ApiError::invalid_field(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_BUSIEST}"),
                    )
                },
            )?
        }
    };
    let geojson = match query.first("format").map(str::trim) {
        None | Some("json") => false,
        Some("geojson") => true,
        Some(_) => return Err(ApiError::invalid_field("format", "must be json or geojson")),
    };
    Ok((resolution, limit, geojson))
}

/// The regions as GeoJSON: one Feature per cell, a Polygon (or a MultiPolygon when the cell
/// crosses the antimeridian), with the cell's figures as properties.
pub fn feature_collection(regions: &[CellTotal]) -> Value {
    let features: Vec<Value> = regions
        .iter()
        .map(|region| {
            let rings = region.h3_index.outline();
            let geometry = match rings.as_slice() {
                [ring] => json!({"type": "Polygon", "coordinates": [ring]}),
                parts => json!({
                    "type": "MultiPolygon",
                    "coordinates": parts.iter().map(|ring| vec![ring]).collect::<Vec<_>>(),
                }),
            };
            json!({
                "type": "Feature",
                "geometry": geometry,
                "properties": {
                    "h3_index": region.h3_index.to_string(),
                    "resolution": region.resolution,
                    "total": region.total,
                },
            })
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features})
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::geo::GeoPoint;

    #[test]
    fn a_region_across_the_antimeridian_is_a_multipolygon_of_valid_rings() {
        let cell = GeoPoint::parse(Some(0.0), Some(180.0), ("lat", "lng")).unwrap().cell();
        let regions = [CellTotal { h3_index: cell, resolution: 7, total: 3 }];

        let collection = feature_collection(&regions);

        let feature = &collection["features"][0];
        assert_eq!(feature["geometry"]["type"], "MultiPolygon");
        assert_eq!(feature["properties"]["total"], 3);
        for polygon in feature["geometry"]["coordinates"].as_array().unwrap() {
            let ring = polygon[0].as_array().unwrap();
            assert_eq!(ring.first(), ring.last());
            assert!(ring.iter().all(|p| p[0].as_f64().unwrap().abs() <= 180.0));
        }
    }
}
