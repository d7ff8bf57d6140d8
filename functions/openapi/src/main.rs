// Lambda gives a process one event at a time: one thread serves it, with no hand-offs between
// worker threads (see bench/NOTES.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let document = openapi::document();

    shared::http::serve("GET /openapi.json", |_request| {
        let response = openapi::response(&document);
        async move { Ok(response) }
    })
    .await
}
