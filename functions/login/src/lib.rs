//! `POST /login`: exchanges credentials for a bearer token.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::app::Deps;
use shared::error::ErrorBody;
use shared::events::{EventBus, OutboxStore};
use shared::http::{BodyKind, body_kind, json_response, parse_form, parse_json, source_ip, trace};
use shared::ids::RandomIds;
use shared::throttle::AttemptCounter;
use shared::users::UserReader;
use shared::users::login::{Credentials, LoginForm, LoginJson, Origin, TokenResponse, login};

#[utoipa::path(
    post,
    path = "/login",
    operation_id = "login",
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
        (status = 429, description = "Too many failed attempts for this email or from this \
            address; `Retry-After` gives the seconds to wait.", body = ErrorBody),
    )
)]
pub async fn handle<S, B>(deps: &Deps<S, B>, request: Request) -> Result<Response<Body>, ApiError>
where
    S: UserReader + OutboxStore + AttemptCounter,
    B: EventBus,
{
    let credentials: Credentials = match body_kind(&request) {
        BodyKind::Form => parse_form::<LoginForm>(&request)?.into(),
        BodyKind::Json => parse_json::<LoginJson>(&request)?.into(),
        BodyKind::Other => {
            return Err(ApiError::UnsupportedMediaType(
                "Send application/x-www-form-urlencoded (the OAuth2 password form) or JSON.".into(),
            ));
        }
    };

    let (trace, source_ip) = (trace(&request), source_ip(&request));
    let origin = Origin { trace: &trace, source_ip: &source_ip };
    let (throttle, delivery) = (deps.throttle(), deps.delivery());
    let token =
        login(&deps.store, &deps.keys, &RandomIds, &throttle, &delivery, origin, credentials)
            .await?;

    Ok(json_response(StatusCode::OK, &token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::events::{RecordingBus, Trace};
    use shared::store::memory::MemoryStore;
    use shared::users::Role;
    use shared::users::register::{NewUser, RegisterRequest, Registrar, register};

    async fn deps_with_alice() -> Deps<MemoryStore, RecordingBus> {
        let deps = Deps::in_memory();
        let alice = RegisterRequest {
            username: "alice".into(),
            email: "alice@example.com".into(),
            password: "correct horse battery".into(),
            role: Role::Patient,
        };
        let new_user = NewUser::try_from(alice).expect("valid");
        let trace = Trace::new(None, time::OffsetDateTime::now_utc());
        let registrar = Registrar::Caller(None);
        register(&deps.store, &RandomIds, &trace, &deps.delivery(), registrar, new_user)
            .await
            .expect("stored");
        deps
    }

    fn sample_event() -> Request {
        lambda_http::request::from_str(include_str!("../../../events/login.json"))
            .expect("the sample event parses")
    }

    #[tokio::test]
    async fn the_sample_form_logs_in_and_the_token_authenticates() {
        let deps = deps_with_alice().await;

        let response = handle(&deps, sample_event()).await.expect("logged in");

        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(body["token_type"], "bearer");
        let token = body["access_token"].as_str().expect("token");
        assert_eq!(deps.keys.verify(token).expect("valid").role, Role::Patient);
    }

    #[tokio::test]
    async fn an_unknown_email_is_invalid_credentials() {
        let deps = deps_with_alice().await;
        let mut request = sample_event();
        *request.body_mut() = Body::Text("username=bob%40example.com&password=whatever1".into());

        let error = handle(&deps, request).await.expect_err("refused");

        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error.to_string(), "Invalid credentials");
    }

    #[tokio::test]
    async fn past_the_limit_a_known_and_an_unknown_email_get_the_same_429() {
        let deps = deps_with_alice().await;
        let attempt = |email: &str, password: &str| {
            let mut request = sample_event();
            let form = format!("username={}&password={password}", email.replace('@', "%40"));
            *request.body_mut() = Body::Text(form);
            handle(&deps, request)
        };
        let limit = deps.login_throttle.max_failures_per_account;
        for email in ["alice@example.com", "nobody@example.com"] {
            for _ in 0..limit {
                let error = attempt(email, "wrong-password").await.expect_err("refused");
                assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
            }
        }

        for email in ["alice@example.com", "nobody@example.com"] {
            let error = attempt(email, "correct+horse+battery").await.expect_err("throttled");
            assert_eq!(error.status(), StatusCode::TOO_MANY_REQUESTS);
            let response = error.into_response();
            assert!(response.headers().contains_key("retry-after"));
        }
    }
}
