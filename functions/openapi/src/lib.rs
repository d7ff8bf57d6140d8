//! `GET /openapi.json`: the OpenAPI 3.1 description, generated from the handlers' annotations.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use shared::openapi::BearerSecurity;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Clinic API",
        description = "Patients book doctors, every action is audited, and admins see demand \
                       on an H3 hexagon map. Errors are JSON: `{\"detail\": \"...\"}`."
    ),
    paths(register::handle, login::handle, users_me::handle),
    modifiers(&BearerSecurity),
    tags((name = "accounts", description = "Registration, login and profiles."))
)]
pub struct ApiDoc;

/// The description as JSON, built once per cold start.
pub fn document() -> String {
    let mut openapi = ApiDoc::openapi();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    // The document is built from static annotations; failing to print it is a bug.
    openapi
        .to_pretty_json()
        .unwrap_or_else(|e| format!(r#"{{"error": "{e}"}}"#))
}

pub fn response(document: &str) -> Response<Body> {
    let mut response = Response::new(Body::Text(document.to_owned()));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_the_password_flow_at_login() {
        let json: serde_json::Value = serde_json::from_str(&document()).expect("JSON");

        assert!(
            json["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1"))
        );
        let flow = &json["components"]["securitySchemes"]["bearer"]["flows"]["password"];
        assert_eq!(flow["tokenUrl"], "/login");
        for path in ["/register", "/login", "/users/me"] {
            assert!(json["paths"][path].is_object(), "{path} is documented");
        }
    }
}

#[cfg(test)]
mod event_tests {
    #[test]
    fn the_sample_event_parses_as_a_get() {
        let request = lambda_http::request::from_str(include_str!("../../../events/openapi.json"))
            .expect("the sample event parses");

        assert_eq!(request.method(), "GET");
        assert_eq!(request.uri().path(), "/openapi.json");
    }
}
