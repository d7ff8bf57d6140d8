//! The house error format: every failure a client sees is `application/json`
//! `{"detail": "..."}`, and a 422 may add `errors: [{field, message}]`.
//!
//! Domain operations have their own error enums; each converts into [`ApiError`], which owns the
//! single mapping from failure to HTTP status.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A sentence a person can act on.
    #[schema(example = "Invalid credentials")]
    pub detail: String,
    /// For 422 responses: which fields were wrong, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One rejected field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    #[schema(example = "email")]
    pub field: String,
    #[schema(example = "must be a valid email address")]
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// A failure as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    Validation { detail: String, errors: Vec<FieldError> },
    /// Missing, malformed, expired or forged credentials (answered with `WWW-Authenticate`).
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too many attempts: the client may try again after `retry_after_seconds`.
    #[error("{detail}")]
    TooManyRequests { detail: String, retry_after_seconds: u64 },
    /// A dependency is overloaded; the client may retry.
    #[error("the service is busy")]
    Busy,
    /// A bug or an infrastructure failure. The cause is logged, never sent.
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// A write that kept losing to concurrent writes of the same items after its retries: the
/// client may retry (503), nothing is broken.
#[derive(Debug, thiserror::Error)]
#[error("the write kept conflicting with concurrent writes")]
pub struct Contended;

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        if error.is::<Contended>() { Self::Busy } else { Self::Internal(error) }
    }
}

impl ApiError {
    /// A 422 for one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid_fields(vec![FieldError::new(field, message)])
    }

    /// A 422 listing every rejected field; the detail names them.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("Invalid field `{}`: {}.", one.field, one.message),
            many => {
                let names: Vec<_> = many.iter().map(|e| format!("`{}`", e.field)).collect();
                format!("Invalid fields: {}.", names.join(", "))
            }
        };
        Self::Validation { detail, errors }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response for this error. Server-side failures are logged here, once, with their
    /// cause chain; the client gets a generic sentence.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let retry_after = match &self {
            Self::TooManyRequests { retry_after_seconds, .. } => Some(*retry_after_seconds),
            Self::Busy => Some(1),
            _ => None,
        };
        let (detail, errors) = match self {
            Self::Validation { detail, errors } => (detail, errors),
            Self::Internal(error) => {
                tracing::error!(error.cause_chain = ?error, "request failed");
                ("Internal server error. Please try again later.".to_owned(), Vec::new())
            }
            Self::Busy => {
                tracing::warn!("request rejected: a dependency is busy");
                ("The service is busy. Please retry in a moment.".to_owned(), Vec::new())
            }
            Self::PayloadTooLarge { limit_bytes } => {
                (format!("The request body must not exceed {limit_bytes} bytes."), Vec::new())
            }
            other => (other.to_string(), Vec::new()),
        };
        let mut response = crate::http::json_response(status, &ErrorBody { detail, errors });
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(response: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).expect("error bodies are JSON")
    }

    #[test]
    fn internal_errors_never_leak_their_cause() {
        let error = ApiError::Internal(anyhow::anyhow!("ResourceNotFoundException: table clinic"));

        let response = error.into_response();

        assert_eq!(response.status(), 500);
        let body = body_json(&response).to_string();
        assert!(!body.contains("clinic") && !body.contains("Resource"), "{body}");
    }

    #[test]
    fn contention_past_its_retries_is_503_with_retry_after() {
        let error = ApiError::from(anyhow::Error::new(Contended).context("Failed to store"));

        let response = error.into_response();

        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn too_many_requests_says_when_to_retry() {
        let error =
            ApiError::TooManyRequests { detail: "Slow down.".into(), retry_after_seconds: 42 };

        let response = error.into_response();

        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
        assert_eq!(body_json(&response), serde_json::json!({"detail": "Slow down."}));
    }

    #[test]
    fn unauthorized_carries_the_bearer_challenge() {
        let response = ApiError::Unauthorized("Not authenticated".into()).into_response();

        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body_json(&response), serde_json::json!({"detail": "Not authenticated"}));
    }

    #[test]
    fn validation_errors_name_each_field() {
        let error = ApiError::invalid_fields(vec![
            FieldError::new("email", "must be a valid email address"),
            FieldError::new("password", "must be at least 8 characters"),
        ]);

        let response = error.into_response();

        assert_eq!(response.status(), 422);
        let body = body_json(&response);
        assert_eq!(body["detail"], "Invalid fields: `email`, `password`.");
        assert_eq!(body["errors"][1]["field"], "password");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
