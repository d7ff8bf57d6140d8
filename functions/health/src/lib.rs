//! `GET /health`: for load balancers and uptime checks. No authentication, no data: the version
//! and whether the table answers (200), or 503 when it does not.

use lambda_http::http::HeaderValue;
use lambda_http::http::header::CACHE_CONTROL;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::health::{Health, TableProbe, check};
use shared::http::json_response;

#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    operation_id = "getHealth",
    security(()),
    responses(
        (status = 200, description = "Up, and the table answers.", body = Health),
        (status = 503, description = "The table did not answer in time.", body = Health),
    )
)]
pub async fn handle(
    probe: &impl TableProbe,
    _request: Request,
) -> Result<Response<Body>, ApiError> {
    let (status, health) = check(probe, env!("CARGO_PKG_VERSION")).await;

    let mut response = json_response(status, &health);
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Up;

    impl TableProbe for Up {
        async fn probe(&self) -> anyhow::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_sample_event_gets_the_version_and_an_answering_table() {
        let request = lambda_http::request::from_str(include_str!("../../../events/health.json"))
            .expect("the sample event parses");

        let response = handle(&Up, request).await.expect("answered");

        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(body["table"], "ok");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    }
}
