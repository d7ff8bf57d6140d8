use shared::app::Deps;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let deps = Deps::from_env().await?;

    shared::http::serve("POST /users/me/password", |r| change_password::handle(&deps, r)).await
}
