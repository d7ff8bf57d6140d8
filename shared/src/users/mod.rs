//! Accounts: who may register, how they log in, what a profile shows, how Admins manage them
//! and how a user changes their password.

pub mod common_passwords;
mod fields;
pub mod login;
pub mod manage;
pub mod password_change;
pub mod profile;
pub mod register;

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::events::DomainEvent;
use crate::pagination::{Page, Position};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

impl FromStr for UserStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            other => Err(format!("unknown status `{other}`: expected active or disabled")),
        }
    }
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
    /// Goes up with every change that must end the sessions opened before it (a new role, a new
    /// status, a new password). Tokens carry the value they were issued with.
    pub token_version: u64,
}

impl User {
    /// Whether this account counts towards the active Admins that must never drop to zero.
    pub fn is_active_admin(&self) -> bool {
        self.role == Role::Admin && self.status == UserStatus::Active
    }
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

/// Stores new accounts, enforcing unique ids, emails and usernames in one transaction.
pub trait UserWriter: Send + Sync {
    /// Stores the user with `event` in the outbox, in one transaction; an active Admin also moves
    /// the tally of active Admins (`tally`), in the same transaction.
    fn create_user(
        &self,
        user: &User,
        event: &DomainEvent,
        tally: Option<TallyChange>,
    ) -> impl Future<Output = Result<(), CreateUserError>> + Send;
}

/// Reads accounts with strongly consistent reads.
pub trait UserReader: Send + Sync {
    fn user_by_id(&self, id: UserId) -> impl Future<Output = anyhow::Result<Option<User>>> + Send;

    fn user_by_email(
        &self,
        email: &str,
    ) -> impl Future<Output = anyhow::Result<Option<User>>> + Send;

    /// The caller's account and, when the request names one, another user's (which may be the
    /// caller's own). The default reads them one after the other; DynamoDB's store reads both
    /// in one consistent batch.
    fn account_and_user(
        &self,
        caller: UserId,
        other: Option<UserId>,
    ) -> impl Future<Output = anyhow::Result<(Option<User>, Option<User>)>> + Send {
        async move {
            let account = self.user_by_id(caller).await?;
            let other = match other {
                Some(id) => self.user_by_id(id).await?,
                None => None,
            };
            Ok((account, other))
        }
    }
}

/// The number of active Admins, as the tally item holds it; when there is no tally item yet
/// (`stored: false`), as counted from the users, to create the item with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminTally {
    pub active: u64,
    pub stored: bool,
}

/// How a write moves the tally of active Admins: from what was read, by `delta` (-1 or +1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TallyChange {
    pub read: AdminTally,
    pub delta: i64,
}

impl TallyChange {
    /// The change between two states of one account, if it moves the tally.
    pub fn between(before: Option<&User>, after: &User, read: AdminTally) -> Option<Self> {
        let delta = i64::from(after.is_active_admin())
            - i64::from(before.is_some_and(User::is_active_admin));
        (delta != 0).then_some(Self { read, delta })
    }

    /// The count after the change; below one means the last active Admin would go.
    pub fn after(&self) -> i64 {
        i64::try_from(self.read.active).unwrap_or(i64::MAX).saturating_add(self.delta)
    }
}

/// Reads the tally of active Admins.
pub trait AdminTallyReader: Send + Sync {
    /// The stored tally, or, when none is stored yet, the active Admins counted.
    fn admin_tally(&self) -> impl Future<Output = anyhow::Result<AdminTally>> + Send;
}

/// One change of a stored account, written only if the account is still as it was read.
#[derive(Debug)]
pub struct AccountUpdate<'a> {
    /// The account as read: the write happens only if its `token_version` is still this one's.
    pub before: &'a User,
    /// The account as it should be, with the next `token_version`.
    pub after: &'a User,
    /// The Admin making the change when it is not the account's owner: the write happens only if
    /// they are still an active Admin with the session they were checked with.
    pub admin: Option<&'a User>,
    pub tally: Option<TallyChange>,
    /// The events of the change, written to the outbox in the same transaction.
    pub events: &'a [DomainEvent],
}

/// Why an account change was not written.
#[derive(Debug, thiserror::Error)]
pub enum UpdateAccountError {
    #[error("the account changed since it was read")]
    Changed,
    #[error("the change would leave no active Admin")]
    LastAdmin,
    #[error("the acting Admin is no longer an active Admin")]
    AdminRevoked,
    /// Another transaction touched the same items (or created the tally first), or the table is
    /// throttling: worth a retry.
    #[error("the write conflicted or was throttled")]
    Contended,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Changes stored accounts.
pub trait AccountWriter: Send + Sync {
    fn update_account(
        &self,
        update: &AccountUpdate<'_>,
    ) -> impl Future<Output = Result<(), UpdateAccountError>> + Send;
}

/// Which accounts to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
}

/// Lists accounts, active ones first, then by creation time: one Query per page.
pub trait UserLister: Send + Sync {
    fn users_page(
        &self,
        filter: UserFilter,
        limit: u32,
        after: Option<Position>,
    ) -> impl Future<Output = anyhow::Result<Page<User>>> + Send;
}
