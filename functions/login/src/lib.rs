//! `POST /login`: exchanges credentials for a bearer token.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::app::Deps;
use shared::error::ErrorBody;
use shared::http::{BodyKind, body_kind, json_response, parse_form, parse_json};
use shared::ids::SystemClock;
use shared::users::UserReader;
use shared::users::login::{Credentials, LoginForm, LoginJson, TokenResponse, login};

#[utoipa::path(
    post,
    path = "/login",
    tag = "accounts",
    request_body(
        description = "The OAuth2 password form (`username` is the email), or JSON.",
        content(
            (LoginForm = "application/x-www-form-urlencoded"),
            (LoginJson = "application/json"),
        )
    ),
    responses(
        (status = 200, description = "A bearer token.", body = TokenResponse),
        (status = 401, description = "Invalid credentials.", body = ErrorBody),
        (status = 413, description = "The body is larger than 16 KiB.", body = ErrorBody),
        (status = 415, description = "The body is neither a form nor JSON.", body = ErrorBody),
        (status = 422, description = "A field is missing.", body = ErrorBody),
    )
)]
pub async fn handle<S: UserReader>(
    deps: &Deps<S>,
    request: Request,
) -> Result<Response<Body>, ApiError> {
    let credentials: Credentials = match body_kind(&request) {
        BodyKind::Form => parse_form::<LoginForm>(&request)?.into(),
        BodyKind::Json => parse_json::<LoginJson>(&request)?.into(),
        BodyKind::Other => return Err(ApiError::UnsupportedMediaType(
            "Send application/x-www-form-urlencoded (the OAuth2 password form) or JSON.".into(),
        )),
    };

    let token = login(&deps.store, &deps.keys, &SystemClock, credentials).await?;

    Ok(json_response(StatusCode::OK, &token))
}
