//! Cross-origin requests from browsers. `CORS_ALLOWED_ORIGINS` lists the web origins that may
//! call the API (`https://app.example.com,http://localhost:5173`; `*` for any; unset or empty
//! for none). Credentials (cookies) are never allowed: the API authenticates with bearer tokens.
//!
//! In AWS the HTTP API's `CorsConfiguration` answers preflights and sets these headers, from the
//! same list (the `CorsAllowedOrigins` parameter). Locally `cargo lambda watch` runs with
//! `--disable-cors` and every function applies the policy itself through [`crate::http::serve`],
//! with the same methods, headers and lifetime as the template, so a browser sees one behaviour.

use lambda_http::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ORIGIN, VARY,
};
use lambda_http::http::{HeaderMap, HeaderValue, StatusCode};
use lambda_http::{Body, Response};

/// The methods the API uses (as in the template's `AllowMethods`).
pub const ALLOWED_METHODS: &str = "GET, POST, PATCH, OPTIONS";
/// The request headers a browser may send (as in the template's `AllowHeaders`).
pub const ALLOWED_HEADERS: &str = "authorization, content-type";
/// The response headers scripts may read (as in the template's `ExposeHeaders`).
pub const EXPOSED_HEADERS: &str = "link, retry-after, www-authenticate";
/// How long a browser may keep a preflight's answer (as in the template's `MaxAge`).
pub const MAX_AGE_SECONDS: u32 = 600;

/// Which origins may call the API from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsPolicy {
    any: bool,
    origins: Vec<String>,
}

/// A listed value that is not an origin.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "CORS_ALLOWED_ORIGINS: `{0}` is not an origin; list origins such as \
     https://app.example.com (scheme, host and optional port, no path), separated by commas, \
     or `*`"
)]
pub struct BadOrigin(pub String);

impl CorsPolicy {
    /// Reads `CORS_ALLOWED_ORIGINS` from the environment, or else from a `.env` file.
    pub fn from_env() -> Result<Self, BadOrigin> {
        const NAME: &str = "CORS_ALLOWED_ORIGINS";
        let value = std::env::var(NAME).ok().or_else(|| {
            dotenvy::dotenv_iter()
                .ok()?
                .filter_map(Result::ok)
                .find_map(|(key, value)| (key == NAME).then_some(value))
        });
        Self::parse(value.as_deref().unwrap_or_default())
    }

    /// A comma-separated list of origins, or `*`.
    pub fn parse(raw: &str) -> Result<Self, BadOrigin> {
        let mut policy = Self::default();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                policy.any = true;
            } else if is_origin(entry) {
                policy.origins.push(entry.to_ascii_lowercase());
            } else {
                return Err(BadOrigin(entry.to_owned()));
            }
        }
        Ok(policy)
    }

    /// The `Access-Control-Allow-Origin` value for a request with these headers, if its origin
    /// may call.
    fn grant(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        let origin = origin?.to_str().ok()?.trim();
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        let allowed = self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin));
        allowed.then(|| HeaderValue::from_str(origin).ok()).flatten()
    }

    /// Answers an `OPTIONS` request: 204, with the grant when the origin may call (and nothing
    /// that allows anything otherwise, so the browser stops there).
    pub fn preflight(&self, request: &HeaderMap) -> Response<Body> {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        self.vary(headers);
        if let Some(origin) = self.grant(request.get(ORIGIN)) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOWED_METHODS));
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOWED_HEADERS));
            headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(MAX_AGE_SECONDS));
        }
        response
    }

    /// Adds the grant to an actual response, when the request's `Origin` may call.
    pub fn apply(&self, origin: Option<&HeaderValue>, response: &mut Response<Body>) {
        let headers = response.headers_mut();
        self.vary(headers);
        if let Some(origin) = self.grant(origin) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers
                .insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
        }
    }

    /// Answers that depend on the origin must not be cached for another origin.
    fn vary(&self, headers: &mut HeaderMap) {
        if !self.any && !self.origins.is_empty() {
            headers.append(VARY, HeaderValue::from_static("origin"));
        }
    }
}

/// `http` or `https`, `://`, a host (letters, digits, dots, hyphens, or a bracketed IPv6
/// address) and an optional port; nothing else.
fn is_origin(entry: &str) -> bool {
    let Some((scheme, rest)) = entry.split_once("://") else {
        return false;
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return false;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !rest.ends_with(']') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !inner.is_empty() && inner.chars().all(|c| c.is_ascii_hexdigit() || c == ':')
    } else {
        !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(origin: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(origin) = origin {
            headers.insert(ORIGIN, origin.parse().expect("header"));
        }
        headers
    }

    fn policy() -> CorsPolicy {
        CorsPolicy::parse("https://app.example.com, http://localhost:5173").expect("valid")
    }

    #[test]
    fn a_listed_origin_gets_its_preflight_answered() {
        let response = policy().preflight(&request(Some("https://app.example.com")));

        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let headers = response.headers();
        assert_eq!(headers[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert!(headers[ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap().contains("PATCH"));
        assert!(headers[ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().contains("authorization"));
        assert_eq!(headers[VARY], "origin");
        assert!(!headers.contains_key("access-control-allow-credentials"));
    }

    #[test]
    fn another_origin_gets_no_grant() {
        for origin in [Some("https://evil.example"), Some("null"), None] {
            let preflight = policy().preflight(&request(origin));
            let mut actual = Response::new(Body::Empty);
            policy().apply(request(origin).get(ORIGIN), &mut actual);

            for response in [&preflight, &actual] {
                assert!(
                    !response.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN),
                    "{origin:?}"
                );
                assert!(!response.headers().contains_key(ACCESS_CONTROL_ALLOW_METHODS));
            }
        }
    }

    #[test]
    fn actual_responses_to_a_listed_origin_expose_the_link_header() {
        let mut response = Response::new(Body::Empty);

        policy().apply(request(Some("http://localhost:5173")).get(ORIGIN), &mut response);

        assert_eq!(response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "http://localhost:5173");
        assert!(
            response.headers()[ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().contains("link")
        );
    }

    #[test]
    fn no_setting_allows_nothing_and_a_wildcard_allows_any_origin_without_credentials() {
        let none = CorsPolicy::parse("").expect("valid");
        let mut response = Response::new(Body::Empty);
        none.apply(request(Some("https://app.example.com")).get(ORIGIN), &mut response);
        assert!(response.headers().is_empty());

        let any = CorsPolicy::parse("*").expect("valid");
        let preflight = any.preflight(&request(Some("https://anywhere.example")));
        assert_eq!(preflight.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }

    #[test]
    fn entries_that_are_not_origins_are_refused_at_start() {
        for bad in ["app.example.com", "https://app.example.com/", "ftp://x.example", "https://"] {
            assert_eq!(CorsPolicy::parse(bad), Err(BadOrigin(bad.to_owned())), "{bad}");
        }
        for good in ["https://APP.example.com", "http://127.0.0.1:3000", "http://[::1]:8080"] {
            assert!(CorsPolicy::parse(good).is_ok(), "{good}");
        }
    }
}
