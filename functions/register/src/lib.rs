//! `POST /register`: creates an account. Patients register themselves; Doctor and Admin accounts
//! need an Admin's bearer token.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::app::Deps;
use shared::error::ErrorBody;
use shared::events::{EventBus, OutboxStore};
use shared::http::{json_response, parse_json, trace};
use shared::ids::RandomIds;
use shared::users::register::{NewUser, RegisterRequest, RegisteredUser, Registrar, register};
use shared::users::{AdminTallyReader, UserReader, UserWriter};

#[utoipa::path(
    post,
    path = "/register",
    operation_id = "register",
    tag = "accounts",
    request_body = RegisterRequest,
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "The account was created.", body = RegisteredUser),
        (status = 401, description = "A bearer token was sent but is invalid, expired or no \
            longer valid.", body = ErrorBody),
        (status = 403, description = "Doctor and Admin accounts need an Admin's token.",
            body = ErrorBody),
        (status = 409, description = "The email or the username is taken.", body = ErrorBody),
        (status = 413, description = "The body is larger than 16 KiB.", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid.", body = ErrorBody),
    )
)]
pub async fn handle<S, B>(deps: &Deps<S, B>, request: Request) -> Result<Response<Body>, ApiError>
where
    S: UserWriter + UserReader + AdminTallyReader + OutboxStore,
    B: EventBus,
{
    let caller = deps.signed_in_optional(&request).await?.map(|s| s.caller);
    let new_user = NewUser::try_from(parse_json::<RegisterRequest>(&request)?)?;

    let (trace, registrar) = (trace(&request), Registrar::Caller(caller));
    let user =
        register(&deps.store, &RandomIds, &trace, &deps.delivery(), registrar, new_user).await?;

    Ok(json_response(StatusCode::CREATED, &user))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::events::RecordingBus;
    use shared::store::memory::MemoryStore;
    use shared::users::Role;

    fn deps() -> Deps<MemoryStore, RecordingBus> {
        Deps::in_memory()
    }

    fn sample_event() -> Request {
        lambda_http::request::from_str(include_str!("../../../events/register.json"))
            .expect("the sample event parses")
    }

    fn body(response: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).expect("JSON")
    }

    #[tokio::test]
    async fn the_sample_event_registers_a_patient_with_a_normalised_email() {
        let response = handle(&deps(), sample_event()).await.expect("created");

        assert_eq!(response.status(), StatusCode::CREATED);
        let body = body(&response);
        assert_eq!(body["email"], "alice@example.com");
        assert_eq!(body["role"], "Patient");
    }

    #[tokio::test]
    async fn registering_the_sample_twice_conflicts() {
        let deps = deps();
        handle(&deps, sample_event()).await.expect("created");

        let error = handle(&deps, sample_event()).await.expect_err("taken");

        assert_eq!(error.status(), StatusCode::CONFLICT);
    }

    #[tokio::test]
    async fn an_admin_token_whose_account_is_gone_is_no_longer_valid() {
        let deps = deps();
        let now = time::OffsetDateTime::now_utc();
        let ghost = shared::users::User {
            id: shared::users::UserId::new(99),
            username: "ghost".into(),
            email: "ghost@example.com".into(),
            role: Role::Admin,
            status: shared::users::UserStatus::Active,
            password_hash: String::new(),
            created_at: now,
            token_version: 0,
        };
        let ghost = deps.keys.issue(&ghost, now).unwrap();
        let mut request = sample_event();
        let body = r#"{"username": "dr", "email": "dr@example.com", "password": "long enough",
            "role": "Doctor"}"#;
        *request.body_mut() = Body::Text(body.into());
        let value = format!("Bearer {}", ghost.access_token).parse().expect("header");
        request.headers_mut().insert("authorization", value);

        let error = handle(&deps, request).await.expect_err("refused");

        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn a_common_password_is_refused_saying_why() {
        let mut request = sample_event();
        let body = r#"{"username": "sam", "email": "sam@example.com", "password": "Password1"}"#;
        *request.body_mut() = Body::Text(body.into());

        let error = handle(&deps(), request).await.expect_err("refused");

        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(error.to_string().contains("`password`"), "{error}");
    }
}
