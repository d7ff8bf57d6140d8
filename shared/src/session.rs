//! The first step of every protected handler: the bearer token is verified, then compared with
//! the account as stored now, in one consistent read. A token stops working as soon as its
//! account is disabled or removed, or its role or password changes: each of those changes moves
//! the account's `token_version` past the one the token carries.

use lambda_http::Request;

use crate::app::Deps;
use crate::auth::{AuthError, AuthedUser, VerifiedToken};
use crate::error::ApiError;
use crate::users::{User, UserId, UserReader, UserStatus};

/// A caller whose token matches their account, with the account as it was read.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub caller: AuthedUser,
    pub account: User,
}

/// Whether a verified token still stands for `account` (the stored account it names).
pub fn check(token: VerifiedToken, account: Option<User>) -> Result<SignedIn, AuthError> {
    let Some(account) = account else {
        return Err(AuthError::Revoked);
    };
    let current = account.status == UserStatus::Active
        && account.token_version == token.token_version
        && account.role == token.role;
    if !current {
        return Err(AuthError::Revoked);
    }
    Ok(SignedIn { caller: AuthedUser { id: account.id, role: account.role }, account })
}

impl<S: UserReader, B> Deps<S, B> {
    /// The caller, or 401: for handlers that need only who is calling.
    pub async fn authenticate(&self, request: &Request) -> Result<AuthedUser, ApiError> {
        Ok(self.signed_in(request).await?.caller)
    }

    /// The caller and their account, or 401: for handlers that show or change the account.
    pub async fn signed_in(&self, request: &Request) -> Result<SignedIn, ApiError> {
        self.signed_in_optional(request).await?.ok_or_else(|| AuthError::Missing.into())
    }

    /// For endpoints open to anonymous callers that grant more to some: no `Authorization`
    /// header gives `None`; a header that is present must hold a token that is still valid.
    pub async fn signed_in_optional(
        &self,
        request: &Request,
    ) -> Result<Option<SignedIn>, ApiError> {
        let Some(token) = self.keys.bearer(request)? else {
            return Ok(None);
        };
        let account = self.store.user_by_id(token.id).await?;
        Ok(Some(checked(token, account)?))
    }
}

impl<S, B> Deps<S, B> {
    /// As [`Self::signed_in`], with the account read by `read` together with what the handler
    /// needs next, so that one call to the store serves both. Given the token's user id,
    /// `read` answers the stored account and the rest.
    pub async fn signed_in_with<T>(
        &self,
        request: &Request,
        read: impl AsyncFnOnce(UserId) -> anyhow::Result<(Option<User>, T)>,
    ) -> Result<(SignedIn, T), ApiError> {
        let token = self.keys.bearer(request)?.ok_or(AuthError::Missing)?;
        let (account, rest) = read(token.id).await?;
        Ok((checked(token, account)?, rest))
    }
}

/// [`check`], logging a refusal.
fn checked(token: VerifiedToken, account: Option<User>) -> Result<SignedIn, AuthError> {
    check(token, account).inspect_err(|_| {
        tracing::info!(user_id = %token.id, "token refused: its account changed");
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::{Role, UserId};

    fn account() -> User {
        User {
            id: UserId::new(9),
            username: "nine".into(),
            email: "nine@example.com".into(),
            role: Role::Doctor,
            status: UserStatus::Active,
            password_hash: String::new(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            token_version: 4,
        }
    }

    fn token() -> VerifiedToken {
        VerifiedToken { id: UserId::new(9), role: Role::Doctor, token_version: 4 }
    }

    #[test]
    fn a_token_of_the_current_session_signs_in_with_the_stored_role() {
        let signed_in = check(token(), Some(account())).expect("current");

        assert_eq!(signed_in.caller, AuthedUser { id: UserId::new(9), role: Role::Doctor });
        assert_eq!(signed_in.account, account());
    }

    #[test]
    fn a_disabled_removed_demoted_or_newer_account_revokes_the_token() {
        let disabled = User { status: UserStatus::Disabled, ..account() };
        let demoted = User { role: Role::Patient, ..account() };
        let changed = User { token_version: 5, ..account() };

        for stored in [None, Some(disabled), Some(demoted), Some(changed)] {
            let result = check(token(), stored.clone());
            assert_eq!(result.err(), Some(AuthError::Revoked), "{stored:?}");
        }
    }
}
