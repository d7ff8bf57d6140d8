use lambda_http::lambda_runtime::{LambdaEvent, run, service_fn};
use shared::events::Delivery;

// Lambda gives a process one event at a time: one thread serves it, with no hand-offs between
// worker threads (see bench/NOTES.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let (store, bus) = shared::app::clients_from_env().await;
    let delivery = Delivery { bus: &bus, outbox: &store };

    run(service_fn(|_: LambdaEvent<serde_json::Value>| async {
        let now = time::OffsetDateTime::now_utc();
        let report = shared::telemetry::measured(redrive_outbox::handle(&delivery, now)).await;
        report.map_err(lambda_http::Error::from)
    }))
    .await
}
