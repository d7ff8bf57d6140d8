use lambda_http::lambda_runtime::{run, service_fn};

// Lambda gives a process one event at a time: one thread serves it, with no hand-offs between
// worker threads (see bench/NOTES.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let (store, _bus) = shared::app::clients_from_env().await;

    run(service_fn(|event| async {
        let result = shared::telemetry::measured(analytics_updater::handle(&store, event)).await;
        if let Err(error) = &result {
            let cause = std::error::Error::source(error).map(ToString::to_string);
            tracing::error!(error = %error, cause, "event not counted");
        }
        result
    }))
    .await
}
