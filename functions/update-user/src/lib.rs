//! `PATCH /users/{id}`: an Admin changes an account's role or status. The account's tokens stop
//! working; the last active Admin can be neither demoted nor disabled.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use shared::ApiError;
use shared::app::Deps;
use shared::error::ErrorBody;
use shared::events::{EventBus, OutboxStore};
use shared::http::{json_response, parse_json, trace};
use shared::ids::RandomIds;
use shared::users::manage::{AccountPatch, parse_user_id, update_account};
use shared::users::profile::UserProfile;
use shared::users::{AccountWriter, AdminTallyReader, UserReader};

#[utoipa::path(
    patch,
    path = "/users/{id}",
    tag = "accounts",
    operation_id = "updateUser",
    params(("id" = u64, Path, description = "The account's id.")),
    request_body = AccountPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account as it is now; its tokens issued before no \
            longer work.", body = UserProfile),
        (status = 401, description = "Missing, invalid, expired or revoked token.",
            body = ErrorBody),
        (status = 403, description = "Admins only.", body = ErrorBody),
        (status = 404, description = "No account has this id.", body = ErrorBody),
        (status = 409, description = "The change would leave no active Admin.", body = ErrorBody),
        (status = 422, description = "The id or a field is invalid, or the body changes nothing.",
            body = ErrorBody),
    )
)]
pub async fn handle<S, B>(deps: &Deps<S, B>, request: Request) -> Result<Response<Body>, ApiError>
where
    S: UserReader + AccountWriter + AdminTallyReader + OutboxStore,
    B: EventBus,
{
    // The target account is read with the caller's, in one call; a bad id is answered after
    // a bad token.
    let target = parse_user_id(request.path_parameters().first("id"));
    let wanted = target.as_ref().ok().copied();
    let (admin, read) = deps
        .signed_in_with(&request, async |caller| deps.store.account_and_user(caller, wanted).await)
        .await?;
    let target = target?;
    let patch = parse_json::<AccountPatch>(&request)?.check()?;

    let (trace, delivery) = (trace(&request), deps.delivery());
    let account =
        update_account(&deps.store, &RandomIds, &trace, &delivery, &admin, target, read, patch)
            .await?;

    Ok(json_response(StatusCode::OK, &account))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sample_event_without_a_real_token_is_401() {
        let deps = Deps::in_memory();
        let request =
            lambda_http::request::from_str(include_str!("../../../events/update-user.json"))
                .expect("the sample event parses");

        let error = handle(&deps, request).await.expect_err("placeholder token");

        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    }
}
