//! `POST /login`: the OAuth2 password form (as the predecessor and Swagger UI send it) or JSON.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tracing::info;
use utoipa::ToSchema;

use super::{Email, UserReader, UserStatus, normalise_password};
use crate::auth::{IssuedToken, JwtKeys};
use crate::error::ApiError;
use crate::events::{
    Action, Actor, Delivery, DomainEvent, EntityType, EventBus, OutboxStore, Trace,
};
use crate::ids::IdGen;
use crate::password;
use crate::throttle::{AttemptCounter, LoginThrottle, ThrottleError};

/// The OAuth2 password form. `username` holds the email; the other OAuth2 fields
/// (`grant_type`, `scope`, `client_id`, `client_secret`) are accepted and ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginForm {
    #[schema(example = "alice@example.com")]
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub grant_type: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
}

/// The JSON alternative to the form.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginJson {
    #[schema(example = "alice@example.com")]
    pub email: String,
    pub password: String,
}

/// Credentials, whichever way they came.
pub struct Credentials {
    pub email: String,
    pub password: SecretString,
}

impl Credentials {
    /// Credentials as they are checked: the password in the normal form it was hashed in.
    pub fn new(email: String, password: &str) -> Self {
        Self { email, password: SecretString::from(normalise_password(password)) }
    }
}

impl From<LoginForm> for Credentials {
    fn from(form: LoginForm) -> Self {
        Self::new(form.username, &form.password)
    }
}

impl From<LoginJson> for Credentials {
    fn from(json: LoginJson) -> Self {
        Self::new(json.email, &json.password)
    }
}

/// A bearer token, as OAuth2 clients expect it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    #[schema(example = 1800)]
    pub expires_in: i64,
}

impl From<IssuedToken> for TokenResponse {
    fn from(token: IssuedToken) -> Self {
        Self {
            access_token: token.access_token,
            token_type: "bearer",
            expires_in: token.expires_in_seconds,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// One answer for an unknown email, a wrong password and a disabled account.
    #[error("Invalid credentials")]
    InvalidCredentials,
    /// Too many failed attempts for this email or from this address (the same answer whether
    /// or not the email has an account).
    #[error(transparent)]
    Throttled(ThrottleError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<ThrottleError> for LoginError {
    fn from(error: ThrottleError) -> Self {
        match error {
            ThrottleError::Unexpected(e) => Self::Unexpected(e),
            throttled => Self::Throttled(throttled),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::InvalidCredentials => Self::Unauthorized(error.to_string()),
            LoginError::Throttled(throttled) => throttled.into(),
            LoginError::Unexpected(e) => e.into(),
        }
    }
}

/// Where a sign-in comes from: the request and its source address.
pub struct Origin<'a> {
    pub trace: &'a Trace,
    /// API Gateway's `sourceIp`.
    pub source_ip: &'a str,
}

/// Verifies the credentials and issues a token. An unknown email costs the same password
/// verification as a known one, so neither the answer nor its timing tells them apart. Both
/// outcomes are published as events (a failure names the account when the email has one).
/// Failed attempts are throttled per email and per source address (checked before the password).
pub async fn login<S, B>(
    store: &S,
    keys: &JwtKeys,
    ids: &impl IdGen,
    throttle: &LoginThrottle<'_, S>,
    delivery: &Delivery<'_, B, S>,
    origin: Origin<'_>,
    credentials: Credentials,
) -> Result<TokenResponse, LoginError>
where
    S: UserReader + OutboxStore + AttemptCounter,
    B: EventBus,
{
    let trace = origin.trace;
    let ticket = throttle.check(&credentials.email, origin.source_ip, trace.now).await?;

    // An address that could not have registered is looked up nowhere, but costs the same.
    let user = match Email::parse(&credentials.email) {
        Ok(email) => store.user_by_email(email.as_str()).await?,
        Err(_) => None,
    };

    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let password_ok = password::verify(credentials.password, stored_hash).await?;
    let user = match user {
        Some(user) if password_ok && user.status == UserStatus::Active => user,
        other => {
            info!("login refused");
            throttle.failed(ticket).await?;
            let account = other.map(|u| u.id.to_string());
            let event =
                DomainEvent::new(ids, trace, None, Action::LoginFailure, EntityType::User, account);
            delivery.standalone(event.failed()).await;
            return Err(LoginError::InvalidCredentials);
        }
    };

    throttle.succeeded(ticket).await;
    let token = keys.issue(&user, trace.now)?;
    info!(user_id = %user.id, role = user.role.as_str(), "login succeeded");
    let actor = Actor { user_id: user.id, role: user.role };
    let entity = Some(user.id.to_string());
    let event =
        DomainEvent::new(ids, trace, Some(actor), Action::LoginSuccess, EntityType::User, entity);
    delivery.standalone(event).await;
    Ok(token.into())
}
