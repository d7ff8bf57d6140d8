// Lambda gives a process one event at a time: one thread serves it, with no hand-offs between
// worker threads (see bench/NOTES.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    // Only the table: the health check publishes nothing and signs nothing.
    let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| "clinic".to_owned());
    let sdk = shared::app::sdk_config().await;
    let store = shared::store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table);

    shared::http::serve("GET /health", |request| health::handle(&store, request)).await
}
