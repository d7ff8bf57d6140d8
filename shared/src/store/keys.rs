//! Key values of each item kind, in one place.

use crate::users::{Role, UserId};

pub const USER_SK: &str = "USER";
pub const EMAIL_SK: &str = "EMAIL";
pub const USERNAME_SK: &str = "USERNAME";

pub fn user_pk(id: UserId) -> String {
    format!("USER#{id}")
}

pub fn email_pk(normalised_email: &str) -> String {
    format!("EMAIL#{normalised_email}")
}

pub fn username_pk(unique_username: &str) -> String {
    format!("USERNAME#{unique_username}")
}

/// `gsi1` partition of users by role (for listing accounts by role), sorted by creation time.
pub fn users_by_role_pk(role: Role) -> String {
    format!("USERS#{}", role.as_str())
}
