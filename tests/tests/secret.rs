//! The signing key read from Secrets Manager (the emulator's) the way a deployed function reads
//! it: its environment holds only `SECRET_KEY_ARN`.

use aws_sdk_secretsmanager::Client;
use e2e::unique_tag;
use shared::Config;
use shared::auth::JwtKeys;
use shared::config::ConfigError;
use shared::users::{Role, User, UserId, UserStatus};

/// The emulator's Secrets Manager.
async fn emulator_secrets() -> Client {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the end-to-end tests with `make test`"
    );
    Client::new(&shared::app::sdk_config().await)
}

/// A new secret holding `text`; answers its ARN.
async fn secret_holding(client: &Client, text: &str) -> String {
    let created = client
        .create_secret()
        .name(format!("clinic-test/signing-key-{}", unique_tag()))
        .secret_string(text)
        .send()
        .await
        .expect("the emulator creates the secret");
    created.arn.expect("a new secret has an ARN")
}

/// A deployed function's settings: APP_ENV defaults to `aws`, and only the ARN names the key.
fn deployed(arn: &str) -> impl Fn(&str) -> Option<String> {
    let arn = arn.to_owned();
    move |name| (name == "SECRET_KEY_ARN").then(|| arn.clone())
}

#[tokio::test]
async fn a_deployed_function_signs_with_the_key_in_its_secret() {
    let client = emulator_secrets().await;
    let key = format!(
        "{}{}{}{}-at-least-32-characters",
        unique_tag(),
        unique_tag(),
        unique_tag(),
        unique_tag()
    );
    let arn = secret_holding(&client, &key).await;

    let config = Config::load_with(deployed(&arn), &client).await.expect("the key is read");

    assert_eq!(config.jwt.secret_bytes(), key.as_bytes());
    let keys = JwtKeys::new(&config.jwt).expect("keys");
    let user = User {
        id: UserId::new(1),
        username: "patient-one".to_owned(),
        email: "patient-one@example.com".to_owned(),
        role: Role::Patient,
        status: UserStatus::Active,
        password_hash: String::new(),
        created_at: time::OffsetDateTime::UNIX_EPOCH,
        token_version: 0,
    };
    let token = keys.issue(&user, time::OffsetDateTime::now_utc());
    let token = token.expect("a token").access_token;
    assert_eq!(keys.verify(&token).expect("verified").role, Role::Patient);
}

#[tokio::test]
async fn a_short_or_missing_secret_stops_the_function_at_start() {
    let client = emulator_secrets().await;
    let short = secret_holding(&client, "only-twenty-characters").await;

    let error = Config::load_with(deployed(&short), &client).await.err();
    assert_eq!(error, Some(ConfigError::SecretTooShort { arn: short, chars: 22 }));

    let missing = "arn:aws:secretsmanager:us-east-1:000000000000:secret:clinic-test/none-AbCdEf";
    let error = Config::load_with(deployed(missing), &client).await.err();
    assert!(
        matches!(&error, Some(ConfigError::SecretUnreadable { arn, .. }) if arn == missing),
        "{error:?}"
    );
}
