//! `GET /users/me`: the signed-in user's own profile.

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{Role, User, UserId, UserReader, UserStatus};
use crate::auth::AuthedUser;
use crate::error::ApiError;

/// What a user sees of their own account.
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

/// The caller's profile. A token whose user no longer exists is not a valid login.
pub async fn my_profile(
    store: &impl UserReader,
    caller: AuthedUser,
) -> Result<UserProfile, ApiError> {
    super::account_of(store, caller).await.map(UserProfile::from)
}
