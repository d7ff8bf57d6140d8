//! `GET /docs` and `GET /docs/{proxy+}`: Swagger UI for the API, its files built into the binary.
//!
//! The page lives at `/docs` and names everything by relative URLs: its files as `docs/...` and
//! the description as `openapi.json`, so that both resolve against the API's root wherever it
//! is mounted (locally, or behind an API Gateway stage). The files' URLs carry a version taken
//! from their content, which lets browsers keep them for a year; the page itself is revalidated
//! on every visit, so a deployment with new files is seen at once.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::anyhow;
use lambda_http::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION,
    REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use shared::ApiError;
use utoipa_swagger_ui::{Config, oauth, serve};

/// The files the page loads, all versioned by [`Docs::version`].
const LINKED: [&str; 6] = [
    "swagger-ui.css",
    "index.css",
    "favicon-32x32.png",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-initializer.js",
];

/// Files requested with the current version never change: the next version has another URL.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The page, and files requested without the current version: always revalidated (`ETag`).
const REVALIDATE: &str = "no-cache";

/// Swagger UI needs inline styles (React sets `style` attributes) and `data:` images from its
/// stylesheet; everything else comes from this API.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' \
                           'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
                           form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// What the handler needs, built once per cold start: the page and the files it links, each
/// with its `ETag`, so that a request only looks one up.
pub struct Docs {
    config: Arc<Config<'static>>,
    version: String,
    page: File,
    linked: HashMap<&'static str, File>,
}

/// One file as served: its bytes, media type and `ETag`.
struct File {
    bytes: Vec<u8>,
    content_type: String,
    etag: String,
}

impl File {
    fn new(name: &str, bytes: Vec<u8>, served_type: String) -> Self {
        let mut hash = Fnv::new();
        hash.write(&bytes);
        let etag = format!("\"{}\"", hash.hex());
        let content_type = content_type(name).map_or(served_type, str::to_owned);
        Self { bytes, content_type, etag }
    }

    /// One of Swagger UI's files, or `None` when it has no file of that name.
    fn swagger_ui(name: &str, config: &Arc<Config<'static>>) -> anyhow::Result<Option<Self>> {
        let file = serve(name, config.clone()).map_err(|e| anyhow!("Swagger UI's {name}: {e}"))?;
        Ok(file.map(|file| Self::new(name, file.bytes.into_owned(), file.content_type)))
    }
}

impl Docs {
    /// Swagger UI reading `openapi.json` beside the page, with the Authorize button logging in
    /// through the document's OAuth2 password flow (`/login`).
    pub fn new() -> anyhow::Result<Self> {
        let config = Arc::new(
            Config::with_oauth_config(
                ["openapi.json"],
                oauth::Config::new().app_name("Clinic API"),
            )
            .use_base_layout()
            .deep_linking(true)
            .persist_authorization(false)
            .display_request_duration(true)
            .filter(true)
            .show_extensions(false)
            .validator_url("none"),
        );
        let mut hash = Fnv::new();
        let mut linked = HashMap::new();
        for name in LINKED {
            let file = File::swagger_ui(name, &config)?
                .ok_or_else(|| anyhow!("Swagger UI has no {name}"))?;
            hash.write(name.as_bytes());
            hash.write(&file.bytes);
            linked.insert(name, file);
        }
        let version = hash.hex();
        let page = File::new("index.html", page(&version).into_bytes(), String::new());
        Ok(Self { config, version, page, linked })
    }

    /// The version that the page's file URLs carry (`?v=`).
    pub fn version(&self) -> &str {
        &self.version
    }
}

/// The page. Its URLs are relative to `/docs`, so `docs/x` is `/docs/x` under any prefix.
fn page(version: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Clinic API</title>
<link rel="stylesheet" href="docs/swagger-ui.css?v={version}">
<link rel="stylesheet" href="docs/index.css?v={version}">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png?v={version}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js?v={version}"></script>
<script src="docs/swagger-ui-standalone-preset.js?v={version}"></script>
<script src="docs/swagger-initializer.js?v={version}"></script>
</body>
</html>
"#
    )
}

/// `GET /docs` serves the page; `GET /docs/{proxy+}` serves one of Swagger UI's files.
pub async fn handle(docs: &Docs, request: Request) -> Result<Response<Body>, ApiError> {
    let parameters = request.path_parameters();
    let Some(name) = parameters.first("proxy") else {
        let mut response = cached(&request, &docs.page, REVALIDATE);
        let headers = response.headers_mut();
        headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        return Ok(response);
    };
    if name.is_empty() || name == "index.html" {
        // `/docs/` and `/docs/index.html` mean the page; the relative target keeps any prefix.
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
        response.headers_mut().insert(LOCATION, HeaderValue::from_static("../docs"));
        return Ok(response);
    }

    if let Some(file) = docs.linked.get(name) {
        let requested_version = request.query_string_parameters_ref().and_then(|q| q.first("v"));
        let cache = if requested_version == Some(docs.version()) { IMMUTABLE } else { REVALIDATE };
        return Ok(cached(&request, file, cache));
    }
    // Swagger UI's other files (not linked by the page, so never versioned).
    let file = File::swagger_ui(name, &docs.config)
        .map_err(ApiError::Internal)?
        .ok_or_else(|| ApiError::NotFound("Swagger UI has no such file.".into()))?;
    Ok(cached(&request, &file, REVALIDATE))
}

/// The media type of one of Swagger UI's files, with the charset of the text ones.
fn content_type(name: &str) -> Option<&'static str> {
    let extension = name.rsplit_once('.').map(|(_, e)| e)?;
    Some(match extension {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "png" => "image/png",
        _ => return None,
    })
}

/// A 200 with the file and its `ETag`, or a 304 when the client's copy is current.
fn cached(request: &Request, file: &File, cache: &str) -> Response<Body> {
    let current = request
        .headers()
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == file.etag || tag == "*");

    let mut response = if current {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else if file.content_type.starts_with("image/") {
        Response::new(Body::Binary(file.bytes.clone()))
    } else {
        Response::new(Body::Text(String::from_utf8_lossy(&file.bytes).into_owned()))
    };
    let headers = response.headers_mut();
    let value = |text: &str| HeaderValue::from_str(text).expect("a visible ASCII header value");
    headers.insert(CONTENT_TYPE, value(&file.content_type));
    headers.insert(CACHE_CONTROL, value(cache));
    headers.insert(ETAG, value(&file.etag));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// 64-bit FNV-1a: a content fingerprint for versions and `ETag`s, stable across builds.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request as API Gateway sends it for `GET /docs`, or for `GET /docs/{proxy+}` when
    /// `proxy` is given.
    fn request(proxy: Option<&str>, query: &str) -> Request {
        let (route, path, parameters) = match proxy {
            None => ("GET /docs".to_owned(), "/docs".to_owned(), serde_json::Value::Null),
            Some(rest) => (
                "GET /docs/{proxy+}".to_owned(),
                format!("/docs/{rest}"),
                serde_json::json!({ "proxy": rest }),
            ),
        };
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": route,
            "rawPath": path,
            "rawQueryString": query,
            "headers": { "host": "api.example.com", "accept": "*/*" },
            "pathParameters": parameters,
            "queryStringParameters": query.split_once('=').map(|(k, v)| {
                serde_json::json!({ k: v })
            }),
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api-id",
                "domainName": "api.example.com",
                "http": {
                    "method": "GET",
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "192.0.2.10",
                    "userAgent": "test"
                },
                "requestId": "id",
                "routeKey": route,
                "stage": "$default",
                "time": "04/Dec/2026:16:00:00 +0000",
                "timeEpoch": 1796400000000_u64
            },
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).expect("the event parses")
    }

    async fn get(docs: &Docs, request: Request) -> Response<Body> {
        handle(docs, request).await.unwrap_or_else(ApiError::into_response)
    }

    fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
        response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    fn text(response: &Response<Body>) -> &str {
        std::str::from_utf8(response.body().as_ref()).expect("UTF-8")
    }

    #[tokio::test]
    async fn the_page_loads_swagger_ui_from_beside_itself() {
        let docs = Docs::new().expect("Swagger UI is built in");

        let response = get(&docs, request(None, "")).await;

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&response, "cache-control"), "no-cache");
        assert!(header(&response, "content-security-policy").contains("script-src 'self'"));
        let page = text(&response);
        assert!(page.contains(r#"<div id="swagger-ui">"#), "{page}");
        for name in LINKED {
            let url = format!("\"docs/{name}?v={}\"", docs.version());
            assert!(page.contains(&url), "the page links {url}");
        }
    }

    #[tokio::test]
    async fn every_file_the_page_links_is_served_with_its_type() {
        let docs = Docs::new().expect("Swagger UI is built in");
        let v = format!("v={}", docs.version());

        for (name, media_type) in [
            ("swagger-ui.css", "text/css; charset=utf-8"),
            ("index.css", "text/css; charset=utf-8"),
            ("favicon-32x32.png", "image/png"),
            ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
            ("swagger-ui-standalone-preset.js", "text/javascript; charset=utf-8"),
            ("swagger-initializer.js", "text/javascript; charset=utf-8"),
        ] {
            let response = get(&docs, request(Some(name), &v)).await;

            assert_eq!(response.status(), StatusCode::OK, "{name}");
            assert_eq!(header(&response, "content-type"), media_type, "{name}");
            assert_eq!(header(&response, "cache-control"), IMMUTABLE, "{name}");
            assert_eq!(header(&response, "x-content-type-options"), "nosniff", "{name}");
            assert!(!response.body().is_empty(), "{name}");
        }
    }

    #[tokio::test]
    async fn the_png_is_binary_and_a_file_without_the_current_version_is_revalidated() {
        let docs = Docs::new().expect("Swagger UI is built in");

        let png = get(&docs, request(Some("favicon-32x32.png"), "")).await;
        let stale = get(&docs, request(Some("swagger-ui.css"), "v=0000")).await;

        assert!(matches!(png.body(), Body::Binary(bytes) if bytes.starts_with(b"\x89PNG")));
        assert_eq!(header(&png, "cache-control"), REVALIDATE);
        assert_eq!(header(&stale, "cache-control"), REVALIDATE);
    }

    #[tokio::test]
    async fn the_initializer_reads_the_description_beside_the_page_and_logs_in_with_oauth() {
        let docs = Docs::new().expect("Swagger UI is built in");

        let response = get(&docs, request(Some("swagger-initializer.js"), "")).await;

        let script = text(&response);
        assert!(script.contains(r#""url": "openapi.json""#), "{script}");
        assert!(script.contains(r#""persistAuthorization": false"#), "{script}");
        assert!(script.contains(r#""validatorUrl": "none""#), "{script}");
        assert!(script.contains("ui.initOAuth("), "{script}");
        assert!(!script.contains("clientSecret"), "{script}");
    }

    #[tokio::test]
    async fn a_current_copy_is_not_sent_again() {
        let docs = Docs::new().expect("Swagger UI is built in");
        let first = get(&docs, request(None, "")).await;
        let mut again = request(None, "");
        again.headers_mut().insert(IF_NONE_MATCH, first.headers()[ETAG].clone());

        let response = get(&docs, again).await;

        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert!(response.body().is_empty());
        assert_eq!(header(&response, "etag"), header(&first, "etag"));
    }

    #[tokio::test]
    async fn an_unknown_file_is_a_json_404() {
        let docs = Docs::new().expect("Swagger UI is built in");

        for name in ["nothing.js", "../openapi.json", "dist/swagger-ui.css"] {
            let response = get(&docs, request(Some(name), "")).await;

            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{name}");
            assert_eq!(header(&response, "content-type"), "application/json", "{name}");
            let body: serde_json::Value = serde_json::from_str(text(&response)).expect("JSON");
            assert!(body["detail"].is_string(), "{name}: {body}");
        }
    }

    #[tokio::test]
    async fn the_index_under_docs_leads_to_the_page() {
        let docs = Docs::new().expect("Swagger UI is built in");

        for name in ["", "index.html"] {
            let response = get(&docs, request(Some(name), "")).await;

            assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY, "{name:?}");
            assert_eq!(header(&response, "location"), "../docs", "{name:?}");
        }
    }
}
