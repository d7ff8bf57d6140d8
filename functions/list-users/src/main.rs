use shared::app::Deps;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let deps = Deps::from_env().await?;

    shared::http::serve("GET /users", |request| list_users::handle(&deps, request)).await
}
