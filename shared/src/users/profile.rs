//! What an account shows of itself: `GET /users/me`, and each account that Admins list or change.

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{Role, User, UserId, UserStatus};

/// An account as the API shows it: never the password hash or the token version.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserProfile {
    #[schema(value_type = u64, example = 4_815_162_342_u64)]
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub role: Role,
    pub status: UserStatus,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<User> for UserProfile {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            username: user.username,
            email: user.email,
            role: user.role,
            status: user.status,
            created_at: user.created_at,
        }
    }
}
