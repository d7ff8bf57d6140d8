//! `POST /register`: anyone may create a Patient; Doctor and Admin accounts need an Admin.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::info;
use utoipa::ToSchema;

use super::{
    AdminTallyReader, CreateUserError, Email, NewPassword, Role, TallyChange, User, UserId,
    UserStatus, UserWriter, Username,
};
use crate::auth::AuthedUser;
use crate::error::{ApiError, FieldError};
use crate::events::{
    Action, Actor, Delivery, DomainEvent, EntityType, EventBus, OutboxStore, Trace,
};
use crate::ids::IdGen;
use crate::password;

/// How often a contended or colliding write is tried before giving up.
const WRITE_ATTEMPTS: u32 = 4;

/// The registration body, as the predecessor took it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(example = "alice")]
    pub username: String,
    #[schema(example = "alice@example.com")]
    pub email: String,
    #[schema(example = "correct horse battery", min_length = 8)]
    pub password: String,
    /// Defaults to `Patient`. `Doctor` and `Admin` need an Admin's bearer token.
    #[serde(default = "default_role")]
    pub role: Role,
}

fn default_role() -> Role {
    Role::Patient
}

/// A registration whose fields passed validation.
#[derive(Debug)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub password: NewPassword,
    pub role: Role,
}

impl TryFrom<RegisterRequest> for NewUser {
    type Error = ApiError;

    fn try_from(request: RegisterRequest) -> Result<Self, ApiError> {
        let username = Username::parse(&request.username);
        let email = Email::parse(&request.email);
        let password = NewPassword::parse(request.password);
        match (username, email, password) {
            (Ok(username), Ok(email), Ok(password)) => {
                Ok(Self { username, email, password, role: request.role })
            }
            (username, email, password) => {
                let errors: Vec<FieldError> =
                    [username.err(), email.err(), password.err()].into_iter().flatten().collect();
                Err(ApiError::invalid_fields(errors))
            }
        }
    }
}

/// The new account, as `POST /register` answers it. Never the hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredUser {
    #[schema(example = "User registered successfully")]
    pub message: &'static str,
    #[schema(value_type = u64, example = 4_815_162_342_u64)]
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("Only an Admin can create Doctor or Admin accounts.")]
    RoleNeedsAdmin,
    #[error("Email already registered")]
    EmailTaken,
    #[error("Username already taken")]
    UsernameTaken,
    #[error("too much contention")]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<RegisterError> for ApiError {
    fn from(error: RegisterError) -> Self {
        match error {
            RegisterError::RoleNeedsAdmin => Self::Forbidden(error.to_string()),
            RegisterError::EmailTaken | RegisterError::UsernameTaken => {
                Self::Conflict(error.to_string())
            }
            RegisterError::Busy => Self::Busy,
            RegisterError::Unexpected(e) => e.into(),
        }
    }
}

/// Who is creating an account.
#[derive(Debug, Clone, Copy)]
pub enum Registrar {
    /// A request to the API, with the caller if it sent a token (checked against the stored
    /// account, so its role is the current one).
    Caller(Option<AuthedUser>),
    /// An operator with direct access to the table (the `create-admin` command).
    Operator,
}

/// Checks who may create the account, hashes the password, and stores the user with its email
/// and username reserved, its event in the outbox and, for an Admin, the tally of active Admins
/// moved, in one transaction; then publishes the event.
pub async fn register<S, B>(
    store: &S,
    ids: &impl IdGen,
    trace: &Trace,
    delivery: &Delivery<'_, B, S>,
    registrar: Registrar,
    new_user: NewUser,
) -> Result<RegisteredUser, RegisterError>
where
    S: UserWriter + AdminTallyReader + OutboxStore,
    B: EventBus,
{
    let caller = match registrar {
        Registrar::Caller(caller) => caller,
        Registrar::Operator => None,
    };
    let privileged = match registrar {
        Registrar::Operator => true,
        Registrar::Caller(caller) => caller.is_some_and(|c| c.role == Role::Admin),
    };
    if new_user.role != Role::Patient && !privileged {
        return Err(RegisterError::RoleNeedsAdmin);
    }

    let password_hash = password::hash(new_user.password.into_secret()).await?;
    let mut user = User {
        id: UserId::new(ids.next_id()),
        username: new_user.username.as_str().to_owned(),
        email: new_user.email.as_str().to_owned(),
        role: new_user.role,
        status: UserStatus::Active,
        password_hash,
        created_at: trace.now,
        token_version: 0,
    };
    let actor = caller.map(Actor::from);
    for attempt in 1..=WRITE_ATTEMPTS {
        let event = DomainEvent::new(
            ids,
            trace,
            actor,
            Action::RegisterUser,
            EntityType::User,
            Some(user.id.to_string()),
        );
        // A new Admin moves the tally; it is read again on each attempt, as a retry may follow
        // another write of it.
        let tally = if user.is_active_admin() {
            TallyChange::between(None, &user, store.admin_tally().await?)
        } else {
            None
        };
        match store.create_user(&user, &event, tally).await {
            Ok(()) => {
                info!(user_id = %user.id, role = user.role.as_str(), "user registered");
                delivery.after_commit(event).await;
                return Ok(RegisteredUser {
                    message: "User registered successfully",
                    id: user.id,
                    username: user.username,
                    email: user.email,
                    role: user.role,
                });
            }
            Err(CreateUserError::EmailTaken) => return Err(RegisterError::EmailTaken),
            Err(CreateUserError::UsernameTaken) => return Err(RegisterError::UsernameTaken),
            Err(CreateUserError::IdTaken) => user.id = UserId::new(ids.next_id()),
            Err(CreateUserError::Contended) => {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
            }
            Err(CreateUserError::Unexpected(e)) => return Err(e.into()),
        }
    }
    Err(RegisterError::Busy)
}
