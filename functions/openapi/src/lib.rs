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
    paths(
        register::handle,
        login::handle,
        users_me::handle,
        setup_patient::handle,
        doctors_profile::handle,
        list_doctors::handle,
        book_appointment::handle,
        my_appointments::handle,
        get_appointment::handle,
        cancel_appointment::handle,
        audit_logs::handle,
        region_analytics::handle,
        busiest_regions::handle,
        list_users::handle,
        update_user::handle,
        change_password::handle,
        health::handle,
    ),
    // `When` appears only in a query parameter, so no body registers it.
    components(schemas(shared::appointments::When)),
    modifiers(&BearerSecurity),
    tags(
        (name = "accounts", description = "Registration, login and profiles."),
        (name = "patients", description = "Where patients are, as H3 cells."),
        (name = "doctors", description = "Doctors' practices and finding them."),
        (name = "appointments", description = "Booking, reading and cancelling."),
        (name = "audit", description = "Who did what, for Admins."),
        (name = "analytics", description = "Where demand comes from, on H3 hexagons."),
        (name = "operations", description = "Health checks for load balancers and monitors."),
    )
)]
pub struct ApiDoc;

/// The description as JSON, built once per cold start.
pub fn document() -> String {
    let mut openapi = ApiDoc::openapi();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    // The document is built from static annotations; failing to print it is a bug.
    openapi.to_pretty_json().unwrap_or_else(|e| format!(r#"{{"error": "{e}"}}"#))
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

        assert!(json["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")));
        let flow = &json["components"]["securitySchemes"]["bearer"]["flows"]["password"];
        assert_eq!(flow["tokenUrl"], "/login");
        let paths = ["/register", "/login", "/users/me", "/users", "/users/{id}", "/health"];
        for path in paths.into_iter().chain(["/users/me/password"]) {
            assert!(json["paths"][path].is_object(), "{path} is documented");
        }
    }

    /// Swagger UI tells operations apart by their id: two alike make "Try it out" on one
    /// operation send another.
    #[test]
    fn every_operation_has_its_own_id() {
        let json: serde_json::Value = serde_json::from_str(&document()).expect("JSON");
        let mut ids = Vec::new();
        for (path, item) in json["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                let id = operation["operationId"].as_str();
                ids.push(id.unwrap_or_else(|| panic!("{method} {path} has no operationId")));
            }
        }
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "operationIds repeat: {ids:?}");
    }

    /// Every `$ref` names a schema that the document defines.
    #[test]
    fn every_reference_resolves() {
        let text = document();
        let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let prefix = "\"#/components/schemas/";
        for (start, _) in text.match_indices(prefix) {
            let rest = &text[start + prefix.len()..];
            let name = &rest[..rest.find('"').expect("a closing quote")];
            assert!(json["components"]["schemas"][name].is_object(), "{name} is not defined");
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

#[cfg(test)]
mod sample_events {
    use std::fs;
    use std::path::Path;

    #[test]
    fn every_sample_event_parses_and_targets_a_documented_route() {
        let doc: serde_json::Value = serde_json::from_str(&super::document()).expect("JSON");
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
        let mut seen = 0;

        for entry in fs::read_dir(&folder).expect("the events folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                continue; // `eventbridge/` holds the events consumers receive
            }
            let text = fs::read_to_string(&path).expect("readable");
            let request = lambda_http::request::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let event: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            let (method, route) = event["routeKey"]
                .as_str()
                .and_then(|k| k.split_once(' '))
                .unwrap_or_else(|| panic!("{}: no routeKey", path.display()));

            assert_eq!(request.method().as_str(), method, "{}", path.display());
            if route != "/openapi.json" {
                let documented = &doc["paths"][route][method.to_lowercase()];
                assert!(documented.is_object(), "{}: {method} {route}", path.display());
            }
            seen += 1;
        }
        assert!(seen >= 15, "only {seen} sample events");
    }
}
