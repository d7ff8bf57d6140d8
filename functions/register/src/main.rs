use shared::app::Deps;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let deps = Deps::from_env().await?;

    shared::http::serve("POST /register", |request| register::handle(&deps, request)).await
}
