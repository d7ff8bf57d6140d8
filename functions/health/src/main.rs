// Lambda gives a process one event at a time: one thread serves it, with no hand-offs between
// worker threads (see bench/NOTES.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let store = shared::app::store_from_env().await;

    shared::http::serve("GET /health", |request| health::handle(&store, request)).await
}
