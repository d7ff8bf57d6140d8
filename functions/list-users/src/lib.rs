//! `GET /users`: accounts for Admins, by role and status, one page at a time.

use lambda_http::{Body, Request, RequestExt, Response};
use shared::ApiError;
use shared::app::Deps;
use shared::error::ErrorBody;
use shared::pagination::{page_request, page_response};
use shared::users::manage::list_users;
use shared::users::profile::UserProfile;
use shared::users::{UserFilter, UserLister, UserReader};

#[utoipa::path(
    get,
    path = "/users",
    tag = "accounts",
    operation_id = "listUsers",
    params(
        ("role" = Option<String>, Query, description = "`Patient`, `Doctor` or `Admin`."),
        ("status" = Option<String>, Query, description = "`active` or `disabled`."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Default 50."),
        ("next" = Option<String>, Query, description = "The cursor from a `Link` header."),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Active accounts first, then disabled ones, each by \
            creation time. A `Link` header with `rel=\"next\"` gives the next page.",
            body = [UserProfile]),
        (status = 401, description = "Missing, invalid, expired or revoked token.",
            body = ErrorBody),
        (status = 403, description = "Admins only.", body = ErrorBody),
        (status = 422, description = "A filter, `limit` or `next` is invalid.", body = ErrorBody),
    )
)]
pub async fn handle<S, B>(deps: &Deps<S, B>, request: Request) -> Result<Response<Body>, ApiError>
where
    S: UserReader + UserLister,
{
    let caller = deps.authenticate(&request).await?;
    let query = request.query_string_parameters();
    let filter = UserFilter::from_query(query.first("role"), query.first("status"))?;
    let list = filter.list_name();
    let (limit, after) = page_request(&request, &deps.cursors, caller.id, &list)?;

    let page = list_users(&deps.store, caller, filter, limit, after).await?;

    Ok(page_response(&request, &deps.cursors, caller.id, &list, &page.items, page.next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sample_event_without_a_real_token_is_401() {
        let deps = Deps::in_memory();
        let request =
            lambda_http::request::from_str(include_str!("../../../events/list-users.json"))
                .expect("the sample event parses");

        let error = handle(&deps, request).await.expect_err("placeholder token");

        assert_eq!(error.status(), 401);
    }
}
