//! `GET /audit-logs`: the audit trail for Admins, newest first. Reading it is itself audited.

use lambda_http::{Body, Request, RequestExt, Response};
use shared::ApiError;
use shared::app::Deps;
use shared::audit::{AuditQuery, AuditRecord, AuditStore, DEFAULT_RANGE_DAYS};
use shared::error::ErrorBody;
use shared::events::{Action, EntityType, EventBus, OutboxStore, health_data_read};
use shared::http::trace;
use shared::ids::RandomIds;
use shared::pagination::{page_request, page_response};
use shared::users::{Role, UserId, UserReader};
use time::format_description::well_known::Iso8601;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

#[utoipa::path(
    get,
    path = "/audit-logs",
    operation_id = "listAuditLogs",
    tag = "audit",
    params(
        ("user_id" = Option<u64>, Query, description = "Records of one actor."),
        ("action" = Option<String>, Query, description = "One action, e.g. CREATE_APPOINTMENT."),
        ("entity_type" = Option<String>, Query, description = "e.g. appointment, user."),
        ("from" = Option<String>, Query, description = "ISO 8601; default 366 days before `to`."),
        ("to" = Option<String>, Query, description = "ISO 8601; default now."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Default 50."),
        ("next" = Option<String>, Query, description = "The cursor from a `Link` header."),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Newest first. A `Link` header with `rel=\"next\"` gives \
            the next page.", body = [AuditRecord]),
        (status = 401, description = "Missing, invalid or expired token.", body = ErrorBody),
        (status = 403, description = "Admins only.", body = ErrorBody),
        (status = 422, description = "A filter is malformed.", body = ErrorBody),
    )
)]
pub async fn handle<S, B>(deps: &Deps<S, B>, request: Request) -> Result<Response<Body>, ApiError>
where
    S: AuditStore + OutboxStore + UserReader,
    B: EventBus,
{
    let caller = deps.authenticate(&request).await?;
    caller.require(&[Role::Admin], "Only Admins can read the audit trail.")?;
    let trace = trace(&request);
    let query = audit_query(&request, trace.now)?;
    let list = list_name(&request);
    let (limit, after) = page_request(&request, &deps.cursors, caller.id, &list)?;

    let page = deps.store.audit_page(&query, limit, after).await?;
    let read = health_data_read(&RandomIds, &trace, caller, EntityType::AuditLog, None);
    deps.delivery().standalone(read).await;

    Ok(page_response(&request, &deps.cursors, caller.id, &list, &page.items, page.next))
}

fn audit_query(request: &Request, now: OffsetDateTime) -> Result<AuditQuery, ApiError> {
    let params = request.query_string_parameters();
    let user_id = params
        .first("user_id")
        .map(|raw| {
            raw.trim()
                .parse::<u64>()
                .ok()
                .filter(|id| *id > 0)
                .map(UserId::new)
                .ok_or_else(|| ApiError::invalid_field("user_id", "must be a positive integer"))
        })
        .transpose()?;
    let action = params
        .first("action")
        .map(|raw| {
            Action::parse(raw.trim()).ok_or_else(|| {
                let names: Vec<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
                ApiError::invalid_field("action", format!("must be one of {}", names.join(", ")))
            })
        })
        .transpose()?;
    let entity_type = params
        .first("entity_type")
        .map(|raw| {
            EntityType::parse(raw.trim()).ok_or_else(|| {
                let names: Vec<_> = EntityType::ALL.iter().map(|e| e.as_str()).collect();
                let message = format!("must be one of {}", names.join(", "));
                ApiError::invalid_field("entity_type", message)
            })
        })
        .transpose()?;
    let to = params.first("to").map(|raw| parse_time(raw, "to", true)).transpose()?.unwrap_or(now);
    let from = match params.first("from") {
        Some(raw) => parse_time(raw, "from", false)?,
        None => to - time::Duration::days(DEFAULT_RANGE_DAYS),
    };

    let query = AuditQuery { user_id, action, entity_type, from, to };
    query.check()?;
    Ok(query)
}

/// The listing a cursor is bound to: the filters as the caller wrote them. (Not the resolved
/// range: a default `to` is "now", which moves between pages; the cursor's position keeps a
/// page from repeating or skipping records.)
fn list_name(request: &Request) -> String {
    let params = request.query_string_parameters();
    let names = ["user_id", "action", "entity_type", "from", "to"];
    let values: Vec<&str> = names.iter().map(|n| params.first(n).unwrap_or_default()).collect();
    format!("audit:{}", values.join("|"))
}

/// An ISO 8601 date-time (an offset is optional; none means UTC) or a date: its start, or with
/// `whole_day` its end, so that `to=2026-12-04` includes that day.
fn parse_time(raw: &str, field: &str, whole_day: bool) -> Result<OffsetDateTime, ApiError> {
    let raw = raw.trim().to_ascii_uppercase();
    let raw = raw.as_str();
    OffsetDateTime::parse(raw, &Iso8601::DEFAULT)
        .ok()
        .or_else(|| PrimitiveDateTime::parse(raw, &Iso8601::DEFAULT).ok().map(|t| t.assume_utc()))
        .or_else(|| {
            let day = Date::parse(raw, &Iso8601::DEFAULT).ok()?;
            let start = day.midnight().assume_utc();
            if !whole_day {
                return Some(start);
            }
            // The last instant of the day; the last day of year 9999 has no next day.
            let next = start.checked_add(time::Duration::days(1));
            Some(
                next.map_or(start.replace_time(time::Time::MAX), |n| {
                    n - time::Duration::NANOSECOND
                }),
            )
        })
        // Times are compared in UTC; some near the ends of the calendar have no UTC form.
        .and_then(|t| t.checked_to_offset(time::UtcOffset::UTC))
        .ok_or_else(|| {
            ApiError::invalid_field(field, "must be an ISO 8601 date or date-time, e.g. 2026-12-01")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_of(pairs: &[(&str, &str)]) -> Result<AuditQuery, ApiError> {
        let map: std::collections::HashMap<String, Vec<String>> =
            pairs.iter().map(|(k, v)| (k.to_string(), vec![v.to_string()])).collect();
        let request = Request::default().with_query_string_parameters(map);
        audit_query(&request, time::macros::datetime!(2026-12-04 12:00 UTC))
    }

    fn field_of(error: ApiError) -> String {
        match error {
            ApiError::Validation { errors, .. } => errors[0].field.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn filters_are_read_and_the_range_defaults_to_a_year_back() {
        let query = query_of(&[("user_id", "7"), ("action", "CREATE_APPOINTMENT")]).unwrap();

        assert_eq!(query.user_id, Some(UserId::new(7)));
        assert_eq!(query.action, Some(Action::CreateAppointment));
        assert_eq!(query.to - query.from, time::Duration::days(366));
    }

    #[test]
    fn malformed_filters_name_their_field() {
        let cases = [
            ("from", "yesterday"),
            ("to", "2026-13-01"),
            ("user_id", "abc"),
            ("action", "DROP_TABLE"),
            ("entity_type", "patient"),
        ];
        for (field, value) in cases {
            assert_eq!(field_of(query_of(&[(field, value)]).unwrap_err()), field, "{value}");
        }
    }

    #[test]
    fn the_ends_of_the_calendar_are_handled_without_a_panic() {
        assert!(
            query_of(&[("user_id", "7"), ("from", "2026-01-01"), ("to", "9999-12-31")]).is_ok()
        );
        let late = query_of(&[("to", "9999-12-31T23:59:59-01:00")]).unwrap_err();
        assert_eq!(field_of(late), "to");
    }

    #[test]
    fn dates_and_date_times_are_accepted() {
        let query = query_of(&[("from", "2026-12-01"), ("to", "2026-12-02T10:00:00")]).unwrap();

        assert_eq!(query.from, time::macros::datetime!(2026-12-01 00:00 UTC));
        assert_eq!(query.to, time::macros::datetime!(2026-12-02 10:00 UTC));
        let day = query_of(&[("from", "2026-12-01"), ("to", "2026-12-01")]).unwrap();
        assert_eq!(day.to, time::macros::datetime!(2026-12-01 23:59:59.999_999_999 UTC));
        assert!(query_of(&[("from", "2026-12-03"), ("to", "2026-12-02")]).is_err());
    }
}
