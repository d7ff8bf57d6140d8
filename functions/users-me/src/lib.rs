//! `GET /users/me`: the signed-in user's profile.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::app::Deps;
use shared::error::ErrorBody;
use shared::http::json_response;
use shared::users::UserReader;
use shared::users::profile::UserProfile;

#[utoipa::path(
    get,
    path = "/users/me",
    operation_id = "usersMe",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's profile.", body = UserProfile),
        (status = 401, description = "Missing, invalid or expired token.", body = ErrorBody),
    )
)]
pub async fn handle<S: UserReader, B>(
    deps: &Deps<S, B>,
    request: Request,
) -> Result<Response<Body>, ApiError> {
    let signed_in = deps.signed_in(&request).await?;

    Ok(json_response(StatusCode::OK, &UserProfile::from(signed_in.account)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sample_event_without_a_real_token_is_401() {
        let deps = Deps::in_memory();
        let request = lambda_http::request::from_str(include_str!("../../../events/users-me.json"))
            .expect("the sample event parses");

        let error = handle(&deps, request).await.expect_err("placeholder token");

        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    }
}
