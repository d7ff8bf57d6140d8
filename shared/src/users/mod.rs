//! Accounts: who may register, how they log in, what a profile shows.

mod fields;
pub mod login;
pub mod profile;
pub mod register;

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::events::DomainEvent;

pub use fields::{
    Email, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, NewPassword, Username, normalise_password,
};

/// What a user may do. Read only from its name (`"Patient"`, ...), nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
pub enum Role {
    Patient,
    Doctor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "Patient",
            Self::Doctor => "Doctor",
            Self::Admin => "Admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Patient" => Ok(Self::Patient),
            "Doctor" => Ok(Self::Doctor),
            "Admin" => Ok(Self::Admin),
            other => Err(format!("unknown role `{other}`: expected Patient, Doctor or Admin")),
        }
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether an account may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Disabled,
}

/// A user's id: a positive integer below 2^53.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(u64);

impl UserId {
    pub const fn new(id: u64) -> Self {
        Self(id)
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for UserId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub role: Role,
    pub status: UserStatus,
    pub password_hash: String,
    pub created_at: OffsetDateTime,
}

/// Why a new account could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("the id is taken")]
    IdTaken,
    #[error("the email is taken")]
    EmailTaken,
    #[error("the username is taken")]
    UsernameTaken,
    /// Another transaction touched the same items, or the table is throttling: worth a retry.
    #[error("the write conflicted or was throttled")]
    Contended,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The stored account of a signed-in caller. A token whose account no longer exists is not a
/// valid login.
pub async fn account_of(
    store: &impl UserReader,
    caller: crate::auth::AuthedUser,
) -> Result<User, crate::error::ApiError> {
    store.user_by_id(caller.id).await?.ok_or_else(|| {
        crate::error::ApiError::Unauthorized(
            "The account behind this token no longer exists.".into(),
        )
    })
}

/// Stores new accounts, enforcing unique ids, emails and usernames in one transaction.
pub trait UserWriter: Send + Sync {
    /// Stores the user with `event` in the outbox, in one transaction.
    fn create_user(
        &self,
        user: &User,
        event: &DomainEvent,
    ) -> impl Future<Output = Result<(), CreateUserError>> + Send;
}

/// Reads accounts with strongly consistent reads.
pub trait UserReader: Send + Sync {
    fn user_by_id(&self, id: UserId) -> impl Future<Output = anyhow::Result<Option<User>>> + Send;

    fn user_by_email(
        &self,
        email: &str,
    ) -> impl Future<Output = anyhow::Result<Option<User>>> + Send;
}
