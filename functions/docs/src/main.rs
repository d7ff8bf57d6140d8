// Lambda gives a process one event at a time: one thread serves it, with no hand-offs between
// worker threads (see bench/NOTES.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let docs = docs::Docs::new()?;

    shared::http::serve("GET /docs", |request| docs::handle(&docs, request)).await
}
