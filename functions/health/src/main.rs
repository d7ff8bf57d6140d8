#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let (store, _bus) = shared::app::clients_from_env().await;

    shared::http::serve("GET /health", |request| health::handle(&store, request)).await
}
