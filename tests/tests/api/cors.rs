//! Cross-origin requests: the configured origin (`make test` allows one) gets its preflights
//! answered and its responses readable; any other origin gets no grant.

use e2e::{TestApp, allowed_origin};
use reqwest::Method;
use reqwest::header::HeaderMap;

fn grant(headers: &HeaderMap) -> Option<&str> {
    headers.get("access-control-allow-origin").and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_preflight_from_the_allowed_origin_is_answered_for_every_kind_of_route() {
    let app = TestApp::new();
    let origin = allowed_origin();

    for (path, method) in [("/users/me", "GET"), ("/login", "POST"), ("/users/42", "PATCH")] {
        let headers = [
            ("origin", origin.as_str()),
            ("access-control-request-method", method),
            ("access-control-request-headers", "authorization, content-type"),
        ];
        let (status, answer) = app.bare(Method::OPTIONS, path, &headers).await;

        assert_eq!(status, 204, "{path}");
        assert_eq!(grant(&answer), Some(origin.as_str()), "{path}");
        let methods = answer["access-control-allow-methods"].to_str().expect("text");
        assert!(methods.contains(method), "{path}: {methods}");
        let allowed = answer["access-control-allow-headers"].to_str().expect("text");
        assert!(allowed.contains("authorization"), "{path}: {allowed}");
        assert!(answer.get("access-control-allow-credentials").is_none(), "no credentials");
    }
}

#[tokio::test]
async fn another_origin_gets_no_grant_on_a_preflight_or_a_response() {
    let app = TestApp::new();
    let headers = [("origin", "https://evil.example"), ("access-control-request-method", "GET")];

    let (status, preflight) = app.bare(Method::OPTIONS, "/users/me", &headers).await;
    let (_, response) = app.bare(Method::GET, "/health", &headers[..1]).await;

    assert_eq!(status, 204);
    assert_eq!(grant(&preflight), None);
    assert!(preflight.get("access-control-allow-methods").is_none());
    assert_eq!(grant(&response), None);
}

#[tokio::test]
async fn responses_to_the_allowed_origin_grant_it_and_expose_the_link_header() {
    let app = TestApp::new();
    let origin = allowed_origin();

    let (status, headers) = app.bare(Method::GET, "/users/me", &[("origin", &origin)]).await;

    assert_eq!(status, 401, "an error answer is readable by the page too");
    assert_eq!(grant(&headers), Some(origin.as_str()));
    let exposed = headers["access-control-expose-headers"].to_str().expect("text");
    assert!(exposed.contains("link") && exposed.contains("retry-after"), "{exposed}");
    assert!(headers["vary"].to_str().expect("text").contains("origin"));
}
