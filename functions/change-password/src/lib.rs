//! `POST /users/me/password`: the signed-in user replaces their password, proving the current
//! one; every token issued before stops working and the answer carries a new one.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::app::Deps;
use shared::error::ErrorBody;
use shared::events::{EventBus, OutboxStore};
use shared::http::{json_response, parse_json, source_ip, trace};
use shared::ids::RandomIds;
use shared::throttle::AttemptCounter;
use shared::users::login::Origin;
use shared::users::password_change::{PasswordChangeRequest, PasswordChanged, change_password};
use shared::users::{AccountWriter, UserReader};

#[utoipa::path(
    post,
    path = "/users/me/password",
    tag = "accounts",
    operation_id = "changePassword",
    request_body = PasswordChangeRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed. Older tokens no longer work; this one does.",
            body = PasswordChanged),
        (status = 401, description = "Missing, invalid, expired or revoked token.",
            body = ErrorBody),
        (status = 403, description = "The current password is incorrect.", body = ErrorBody),
        (status = 422, description = "A field is missing, or the new password breaks the rules \
            (length, or one of the most common passwords).", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords for this account or from this \
            address; `Retry-After` gives the seconds to wait.", body = ErrorBody),
    )
)]
pub async fn handle<S, B>(deps: &Deps<S, B>, request: Request) -> Result<Response<Body>, ApiError>
where
    S: UserReader + AccountWriter + AttemptCounter + OutboxStore,
    B: EventBus,
{
    let signed_in = deps.signed_in(&request).await?;
    let body = parse_json::<PasswordChangeRequest>(&request)?;

    let (trace, source_ip) = (trace(&request), source_ip(&request));
    let origin = Origin { trace: &trace, source_ip: &source_ip };
    let (throttle, delivery) = (deps.throttle(), deps.delivery());
    let changed = change_password(
        &deps.store,
        &deps.keys,
        &RandomIds,
        &throttle,
        &delivery,
        origin,
        &signed_in,
        body,
    )
    .await?;

    Ok(json_response(StatusCode::OK, &changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sample_event_without_a_real_token_is_401() {
        let deps = Deps::in_memory();
        let event = include_str!("../../../events/change-password.json");
        let request = lambda_http::request::from_str(event).expect("the sample event parses");

        let error = handle(&deps, request).await.expect_err("placeholder token");

        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    }
}
