#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let document = openapi::document();

    shared::http::serve("GET /openapi.json", |_request| {
        let response = openapi::response(&document);
        async move { Ok(response) }
    })
    .await
}
