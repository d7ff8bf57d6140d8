//! Creates an Admin account directly in the table: the only way to get the first Admin, since
//! the public endpoint creates Patients only. Reads `ADMIN_EMAIL`, `ADMIN_PASSWORD` and an
//! optional `ADMIN_USERNAME` from the environment (never from the command line, where other
//! users of the machine could read them), `TABLE_NAME`, `EVENT_BUS_NAME` (default `clinic`),
//! and the standard AWS settings (region, credentials, and `AWS_ENDPOINT_URL` for the
//! emulator). It signs nothing, so it needs no `SECRET_KEY`. The creation is published like any
//! other registration, so it appears in the audit trail.

use std::process::ExitCode;

use shared::ApiError;
use shared::events::{Delivery, Trace};
use shared::ids::RandomIds;
use shared::users::Role;
use shared::users::register::{NewUser, RegisterRequest, Registrar, register};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("create-admin: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<String, String> {
    // `cargo lambda watch` can start any binary of the workspace as a function; this one must
    // only ever run from an operator's shell.
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return Err("refusing to run as a Lambda function".into());
    }
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let email = var("ADMIN_EMAIL")?;
    let request = RegisterRequest {
        username: std::env::var("ADMIN_USERNAME")
            .unwrap_or_else(|_| email.split('@').next().unwrap_or("admin").to_owned()),
        email,
        password: var("ADMIN_PASSWORD")?,
        role: Role::Admin,
    };
    let new_user = NewUser::try_from(request).map_err(|e| describe(&e))?;
    let table = var("TABLE_NAME")?;
    let bus_name = std::env::var("EVENT_BUS_NAME").unwrap_or_else(|_| "clinic".to_owned());
    let (store, bus) = shared::app::clients(&table, &bus_name).await;

    let trace = Trace::new(None, time::OffsetDateTime::now_utc());
    let delivery = Delivery { bus: &bus, outbox: &store };
    let created = register(&store, &RandomIds, &trace, &delivery, Registrar::Operator, new_user)
        .await
        .map_err(|e| describe(&ApiError::from(e)))?;
    Ok(format!("Admin {} created with id {}", created.email, created.id))
}

fn describe(error: &ApiError) -> String {
    match error {
        ApiError::Internal(cause) => format!("{cause:#}"),
        other => other.to_string(),
    }
}
