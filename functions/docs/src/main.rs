#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let docs = docs::Docs::new()?;

    shared::http::serve("GET /docs", |request| docs::handle(&docs, request)).await
}
