//! The HTTP edge every function shares: reading bodies, writing JSON, and serving a handler with
//! one log line per request.

use std::convert::Infallible;
use std::future::Future;

use lambda_http::http::header::{CONTENT_TYPE, ORIGIN};
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::error::ApiError;
use crate::telemetry::{Cost, Meter};

/// The largest request body any endpoint accepts.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A JSON response.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    // Serialising our own response types cannot fail: they hold only strings, numbers and enums.
    let text = serde_json::to_string(body).unwrap_or_else(|_| String::from("{}"));
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// How a request body is encoded, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
    Other,
}

pub fn body_kind(request: &Request) -> BodyKind {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    match content_type.as_deref() {
        // A client that sends no type is read as JSON, the API's default.
        None | Some("application/json") => BodyKind::Json,
        Some("application/x-www-form-urlencoded") => BodyKind::Form,
        Some(other) if other.ends_with("+json") => BodyKind::Json,
        Some(_) => BodyKind::Other,
    }
}

/// Parses a JSON object body into `T`, answering 422 with the offending field for any mismatch
/// and 415 for a body sent as another type.
pub fn parse_json<T: DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    if body_kind(request) != BodyKind::Json {
        return Err(ApiError::UnsupportedMediaType("Send the body as application/json.".into()));
    }
    let bytes = request.body().as_ref();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_field("body", "a JSON object is required"));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|error| field_error("", format!("must be valid JSON: {error}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    }
    named_fields(value)
}

/// Parses a form-encoded body into `T`, answering 422 with the offending field. When a key is
/// repeated, its first value counts, as in most form parsers.
pub fn parse_form<T: DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    let mut seen = std::collections::HashSet::new();
    let mut first_values = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(request.body().as_ref()) {
        if seen.insert(name.clone()) {
            first_values.append_pair(&name, &value);
        }
    }
    let text = first_values.finish();
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(text.as_bytes()));
    named_fields(deserializer)
}

/// Deserialises `T`, naming the field that does not fit.
fn named_fields<'de, D, T>(deserializer: D) -> Result<T, ApiError>
where
    D: serde::Deserializer<'de>,
    D::Error: std::fmt::Display,
    T: serde::Deserialize<'de>,
{
    serde_path_to_error::deserialize(deserializer)
        .map_err(|error| field_error(&error.path().to_string(), error.inner().to_string()))
}

/// Turns a deserialisation failure into a 422 naming the field. Messages lose serde's position
/// suffix; a missing field is named by the message, as its path is the parent's.
fn field_error(path: &str, message: String) -> ApiError {
    let message = message.split(" at line ").next().unwrap_or_default().to_owned();
    let missing = message.strip_prefix("missing field `").and_then(|m| m.split('`').next());
    if let Some(name) = missing {
        return ApiError::invalid_field(name, "is required");
    }
    let field = match path {
        "" | "." | "?" => "body",
        named => named,
    };
    ApiError::invalid_field(field, message)
}

/// The request's id (API Gateway's, else Lambda's) and the time it is handled at: what every
/// event the request causes carries.
pub fn trace(request: &Request) -> crate::events::Trace {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;

    let gateway_id = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    };
    let request_id =
        gateway_id.or_else(|| request.lambda_context_ref().map(|c| c.request_id.clone()));
    crate::events::Trace::new(request_id, time::OffsetDateTime::now_utc())
}

/// The address the request came from, as API Gateway saw it (`requestContext.http.sourceIp`).
pub fn source_ip(request: &Request) -> String {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;

    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        _ => None,
    }
    .unwrap_or_else(|| "unknown".to_owned())
}

/// Serves `handler` as a Lambda function: oversized bodies get 413 before it runs, every error
/// becomes the house JSON format, cross-origin requests follow `CORS_ALLOWED_ORIGINS` (an
/// `OPTIONS` preflight is answered here), and each request logs one line with its route, status,
/// latency and CPU time (never its headers or body).
pub async fn serve<H, F>(route: &'static str, handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(Request) -> F + Sync,
    F: Future<Output = Result<Response<Body>, ApiError>> + Send,
{
    let cors = &crate::cors::CorsPolicy::from_env()?;
    let handler = &handler;
    lambda_http::run(service_fn(move |request: Request| async move {
        let meter = Meter::start();
        let response = if request.method() == Method::OPTIONS {
            cors.preflight(request.headers())
        } else {
            let origin = request.headers().get(ORIGIN).cloned();
            let response = if request.body().len() > MAX_BODY_BYTES {
                Err(ApiError::PayloadTooLarge { limit_bytes: MAX_BODY_BYTES })
            } else {
                handler(request).await
            };
            let mut response = response.unwrap_or_else(ApiError::into_response);
            cors.apply(origin.as_ref(), &mut response);
            response
        };
        let status = response.status().as_u16();
        let Cost { latency_ms, cpu_ms } = meter.stop();
        if status >= 500 {
            warn!(route, status, latency_ms, cpu_ms, "request failed");
        } else {
            info!(route, status, latency_ms, cpu_ms, "request handled");
        }
        Ok::<_, Infallible>(response)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Sample {
        name: String,
        age: u8,
    }

    fn request(body: &str, content_type: Option<&str>) -> Request {
        let mut request = Request::new(Body::Text(body.to_owned()));
        if let Some(value) = content_type {
            request.headers_mut().insert(CONTENT_TYPE, value.parse().expect("header"));
        }
        request
    }

    fn field_of(error: ApiError) -> (String, String) {
        match error {
            ApiError::Validation { errors, .. } => {
                (errors[0].field.clone(), errors[0].message.clone())
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    /// API Gateway passes a body that is not UTF-8 base64-encoded, so it arrives as bytes.
    #[test]
    fn a_json_body_that_is_not_utf8_is_a_422() {
        let mut request = Request::new(Body::Binary(vec![0xff, 0x6c, 0xfe]));
        request.headers_mut().insert(CONTENT_TYPE, "application/json".parse().expect("header"));

        let (field, message) = field_of(parse_json::<Sample>(&request).unwrap_err());

        assert_eq!(field, "body");
        assert!(message.starts_with("must be valid JSON"), "{message}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let error = parse_json::<Sample>(&request(r#"{"age": 3}"#, None)).unwrap_err();

        assert_eq!(field_of(error), ("name".into(), "is required".into()));
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named() {
        let error = parse_json::<Sample>(&request(r#"{"name": 5, "age": 3}"#, None)).unwrap_err();

        let (field, message) = field_of(error);
        assert_eq!(field, "name");
        assert!(message.contains("expected a string"), "{message}");
    }

    #[test]
    fn a_body_that_is_not_json_is_refused_as_a_whole() {
        for body in ["", "not json", r#"{"name": "a", "age": 3} trailing"#, r#"["a", 3]"#] {
            let (field, _) = field_of(parse_json::<Sample>(&request(body, None)).unwrap_err());
            assert_eq!(field, "body", "{body:?}");
        }
    }

    #[test]
    fn a_json_body_sent_as_another_type_is_415() {
        let error =
            parse_json::<Sample>(&request(r#"{"name": "a", "age": 3}"#, Some("text/plain")))
                .unwrap_err();

        assert_eq!(error.status(), 415);
    }

    #[test]
    fn a_syntax_error_is_explained_once() {
        let error = parse_json::<Sample>(&request(r#"{"name": "#, None)).unwrap_err();

        let (field, message) = field_of(error);
        assert_eq!(field, "body");
        assert_eq!(message.matches("must be valid JSON").count(), 1, "{message}");
    }

    #[test]
    fn a_repeated_form_key_keeps_its_first_value() {
        let form = "name=Ann&name=Bob&age=30&age=31";

        let sample: Sample = parse_form(&request(form, None)).expect("parsed");

        assert_eq!((sample.name.as_str(), sample.age), ("Ann", 30));
    }

    #[test]
    fn forms_parse_and_name_missing_fields() {
        let form = "name=Ann&age=30";
        assert!(parse_form::<Sample>(&request(form, None)).is_ok());

        let error = parse_form::<Sample>(&request("age=30", None)).unwrap_err();
        assert_eq!(field_of(error).0, "name");
    }

    #[test]
    fn content_types_are_recognised_with_parameters() {
        let form = request("", Some("application/x-www-form-urlencoded; charset=UTF-8"));
        assert_eq!(body_kind(&form), BodyKind::Form);
        assert_eq!(body_kind(&request("", Some("Application/JSON"))), BodyKind::Json);
        assert_eq!(body_kind(&request("", Some("text/plain"))), BodyKind::Other);
        assert_eq!(body_kind(&request("", None)), BodyKind::Json);
    }
}
