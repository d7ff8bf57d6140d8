use shared::app::Deps;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let deps = Deps::from_env().await?;

    shared::http::serve("PATCH /users/{id}", |request| update_user::handle(&deps, request)).await
}
