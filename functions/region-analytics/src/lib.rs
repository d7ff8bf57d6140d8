//! `GET /analytics/{h3_index}`: an Admin's view of one region's appointments.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use shared::ApiError;
use shared::analytics::{
    MAX_RANGE_DAYS, MAX_RINGS, RegionStats, StatsStore, parse_region, region_stats,
};
use shared::app::Deps;
use shared::error::ErrorBody;
use shared::events::{EntityType, EventBus, OutboxStore, health_data_read};
use shared::http::{json_response, trace};
use shared::ids::RandomIds;
use shared::users::{Role, UserReader};
use time::format_description::well_known::Iso8601;
use time::{Date, Duration};

/// The default range reaches this far on each side of today: bookings lie in the future.
const DEFAULT_HALF_RANGE_DAYS: i64 = 30;

#[utoipa::path(
    get,
    path = "/analytics/{h3_index}",
    operation_id = "regionAnalytics",
    tag = "analytics",
    params(
        ("h3_index" = String, Path, description = "An H3 cell of resolution 0 to 7, any case."),
        ("from" = Option<String>, Query, description = "A date; default 30 days before today."),
        ("to" = Option<String>, Query, description = "A date; default 30 days after today."),
        ("k" = Option<u32>, Query, description = "Also the cells within k rings (0 to 5)."),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The region's statistics.", body = RegionStats),
        (status = 401, description = "Missing, invalid or expired token.", body = ErrorBody),
        (status = 403, description = "Admins only.", body = ErrorBody),
        (status = 422, description = "A malformed index, a cell finer than resolution 7, or a bad \
            range.", body = ErrorBody),
    )
)]
pub async fn handle<S, B>(deps: &Deps<S, B>, request: Request) -> Result<Response<Body>, ApiError>
where
    S: StatsStore + OutboxStore + UserReader,
    B: EventBus,
{
    let caller = deps.authenticate(&request).await?;
    caller.require(&[Role::Admin], "Only Admins can read analytics.")?;
    let region = parse_region(request.path_parameters().first("h3_index").unwrap_or_default())?;
    let trace = trace(&request);
    let (from, to, k) = range_and_rings(&request, trace.now.date())?;

    let stats = region_stats(&deps.store, region, from, to, k).await?;
    let read = health_data_read(
        &RandomIds,
        &trace,
        caller,
        EntityType::Analytics,
        Some(region.to_string()),
    );
    deps.delivery().standalone(read).await;

    Ok(json_response(StatusCode::OK, &stats))
}

fn range_and_rings(request: &Request, today: Date) -> Result<(Date, Date, Option<u32>), ApiError> {
    let query = request.query_string_parameters();
    let date = |name: &str, default: Date| match query.first(name) {
        None => Ok(default),
        Some(raw) => Date::parse(raw.trim(), &Iso8601::DEFAULT).map_err(|_| {
            ApiError::invalid_field(name, "must be an ISO 8601 date, e.g. 2026-12-01")
        }),
    };
    let from = date("from", today - Duration::days(DEFAULT_HALF_RANGE_DAYS))?;
    let to = date("to", today + Duration::days(DEFAULT_HALF_RANGE_DAYS))?;
    if from > to {
        return Err(ApiError::invalid_field("from", "must not be after `to`"));
    }
    if (to - from).whole_days() > MAX_RANGE_DAYS {
        return Err(ApiError::invalid_field(
            "to",
            format!("the range may span at most {MAX_RANGE_DAYS} days"),
        ));
    }
    let k = query
        .first("k")
        .map(|raw| {
            raw.trim().parse::<u32>().ok().filter(|k| *k <= MAX_RINGS).ok_or_else(|| {
                ApiError::invalid_field(
                    "k",
                    format!("must be a whole number from 0 to {MAX_RINGS}"),
                )
            })
        })
        .transpose()?;
    Ok((from, to, k))
}
