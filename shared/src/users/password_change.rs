//! `POST /users/me/password`: a signed-in user changes their password by proving the current
//! one. The change moves the account's token version, which ends every session opened before it
//! (this one too); the answer carries a new token, so the caller stays signed in. Wrong current
//! passwords count towards the sign-in throttle, as failed logins do.

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tracing::info;
use utoipa::ToSchema;

use super::login::{Origin, TokenResponse};
use super::{AccountUpdate, AccountWriter, NewPassword, UpdateAccountError, normalise_password};
use crate::auth::{AuthError, JwtKeys};
use crate::error::ApiError;
use crate::events::{Action, Delivery, DomainEvent, EntityType, EventBus, OutboxStore};
use crate::ids::IdGen;
use crate::password;
use crate::session::SignedIn;
use crate::throttle::{AttemptCounter, LoginThrottle};

/// How often a write that lost to a concurrent one is tried before giving up (503).
const WRITE_ATTEMPTS: u32 = 3;

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordChangeRequest {
    pub current_password: String,
    /// At least 8 characters, at most 1024 bytes, not one of the most common passwords.
    #[schema(example = "a new long passphrase", min_length = 8)]
    pub new_password: String,
}

/// The answer to a password change: a token of the new session (older tokens no longer work).
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordChanged {
    #[schema(example = "Password changed")]
    pub message: &'static str,
    #[serde(flatten)]
    pub token: TokenResponse,
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("The current password is incorrect.")]
    WrongPassword,
    #[error(transparent)]
    Refused(ApiError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<PasswordChangeError> for ApiError {
    fn from(error: PasswordChangeError) -> Self {
        match error {
            PasswordChangeError::WrongPassword => Self::Forbidden(error.to_string()),
            PasswordChangeError::Refused(api) => api,
            PasswordChangeError::Unexpected(e) => e.into(),
        }
    }
}

/// Checks the new password's rules (422), the throttle (429) and the current password (403),
/// then stores the new hash with the next token version and the event in one transaction.
#[allow(clippy::too_many_arguments, reason = "each is a distinct input of the change")]
pub async fn change_password<S, B>(
    store: &S,
    keys: &JwtKeys,
    ids: &impl IdGen,
    throttle: &LoginThrottle<'_, S>,
    delivery: &Delivery<'_, B, S>,
    origin: Origin<'_>,
    signed_in: &SignedIn,
    request: PasswordChangeRequest,
) -> Result<PasswordChanged, PasswordChangeError>
where
    S: AccountWriter + AttemptCounter + OutboxStore,
    B: EventBus,
{
    let (caller, account, trace) = (signed_in.caller, &signed_in.account, origin.trace);
    let new_password = NewPassword::parse_field(request.new_password, "new_password")
        .map_err(|e| PasswordChangeError::Refused(ApiError::invalid_fields(vec![e])))?;
    let ticket = throttle
        .check(&account.email, origin.source_ip, trace.now)
        .await
        .map_err(|e| PasswordChangeError::Refused(e.into()))?;

    let current = SecretString::from(normalise_password(&request.current_password));
    if !password::verify(current, Some(account.password_hash.clone())).await? {
        info!(user_id = %caller.id, "password change refused: wrong current password");
        throttle.failed(ticket).await?;
        let event = DomainEvent::by(
            ids,
            trace,
            caller,
            Action::ChangePassword,
            EntityType::User,
            caller.id,
        );
        delivery.standalone(event.failed()).await;
        return Err(PasswordChangeError::WrongPassword);
    }
    throttle.succeeded(ticket).await;

    let mut after = account.clone();
    after.password_hash = password::hash(new_password.into_secret()).await?;
    after.token_version = account.token_version + 1;
    let event =
        DomainEvent::by(ids, trace, caller, Action::ChangePassword, EntityType::User, caller.id);
    let events = [event];
    let update =
        AccountUpdate { before: account, after: &after, admin: None, tally: None, events: &events };
    for attempt in 1..=WRITE_ATTEMPTS {
        match store.update_account(&update).await {
            Ok(()) => {
                info!(user_id = %caller.id, "password changed");
                let [event] = events;
                delivery.after_commit(event).await;
                let token = keys.issue(&after, trace.now)?;
                return Ok(PasswordChanged { message: "Password changed", token: token.into() });
            }
            // The account changed since this request's token was checked: that token is no
            // longer valid, and neither is what it asked for.
            Err(UpdateAccountError::Changed) => {
                return Err(PasswordChangeError::Refused(AuthError::Revoked.into()));
            }
            Err(UpdateAccountError::Contended) => {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
            }
            Err(other) => return Err(anyhow::Error::new(other).into()),
        }
    }
    Err(PasswordChangeError::Refused(ApiError::Busy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Deps;
    use crate::auth::VerifiedToken;
    use crate::events::{RecordingBus, Trace};
    use crate::ids::RandomIds;
    use crate::session::check;
    use crate::store::memory::MemoryStore;
    use crate::users::register::{NewUser, RegisterRequest, Registrar, register};
    use crate::users::{Role, UserReader};

    const PASSWORD: &str = "correct horse battery";

    async fn signed_in_patient(deps: &Deps<MemoryStore, RecordingBus>) -> SignedIn {
        let request = RegisterRequest {
            username: "kim".into(),
            email: "kim@example.com".into(),
            password: PASSWORD.into(),
            role: Role::Patient,
        };
        let new_user = NewUser::try_from(request).expect("valid");
        let trace = Trace::new(None, time::OffsetDateTime::now_utc());
        let created = register(
            &deps.store,
            &RandomIds,
            &trace,
            &deps.delivery(),
            Registrar::Operator,
            new_user,
        )
        .await
        .expect("stored");
        let account = deps.store.user_by_id(created.id).await.unwrap().unwrap();
        let token = VerifiedToken { id: account.id, role: account.role, token_version: 0 };
        check(token, Some(account)).expect("current")
    }

    async fn change(
        deps: &Deps<MemoryStore, RecordingBus>,
        signed_in: &SignedIn,
        current: &str,
        new: &str,
    ) -> Result<PasswordChanged, ApiError> {
        let trace = Trace::new(None, time::OffsetDateTime::now_utc());
        let origin = Origin { trace: &trace, source_ip: "192.0.2.44" };
        let request =
            PasswordChangeRequest { current_password: current.into(), new_password: new.into() };
        let (throttle, delivery) = (deps.throttle(), deps.delivery());
        change_password(
            &deps.store,
            &deps.keys,
            &RandomIds,
            &throttle,
            &delivery,
            origin,
            signed_in,
            request,
        )
        .await
        .map_err(ApiError::from)
    }

    #[tokio::test]
    async fn the_right_current_password_changes_it_and_moves_the_token_version() {
        let deps = Deps::in_memory();
        let kim = signed_in_patient(&deps).await;

        let changed = change(&deps, &kim, PASSWORD, "a brand new passphrase").await.expect("ok");

        let stored = deps.store.user_by_id(kim.caller.id).await.unwrap().unwrap();
        assert_eq!(stored.token_version, 1);
        let token = deps.keys.verify(&changed.token.access_token).expect("valid");
        assert_eq!(token.token_version, 1);
        let actions: Vec<_> = deps.bus.published().iter().map(|e| e.detail.action).collect();
        assert!(actions.contains(&Action::ChangePassword));
    }

    #[tokio::test]
    async fn a_wrong_current_password_is_403_and_a_weak_new_one_422() {
        let deps = Deps::in_memory();
        let kim = signed_in_patient(&deps).await;

        let wrong = change(&deps, &kim, "not my password", "a brand new passphrase").await;
        let common = change(&deps, &kim, PASSWORD, "Password123").await;
        let short = change(&deps, &kim, PASSWORD, "short").await;

        assert_eq!(wrong.expect_err("403").status(), 403);
        for error in [common.expect_err("422"), short.expect_err("422")] {
            match error {
                ApiError::Validation { errors, .. } => assert_eq!(errors[0].field, "new_password"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn wrong_current_passwords_are_throttled_like_logins() {
        let deps = Deps::in_memory();
        let kim = signed_in_patient(&deps).await;
        for _ in 0..deps.login_throttle.max_failures_per_account {
            let wrong = change(&deps, &kim, "guess", "a brand new passphrase").await;
            assert_eq!(wrong.expect_err("403").status(), 403);
        }

        let throttled = change(&deps, &kim, PASSWORD, "a brand new passphrase").await;

        assert_eq!(throttled.expect_err("429").status(), 429);
    }

    #[tokio::test]
    async fn a_session_that_changed_meanwhile_cannot_change_the_password() {
        let deps = Deps::in_memory();
        let kim = signed_in_patient(&deps).await;
        change(&deps, &kim, PASSWORD, "a brand new passphrase").await.expect("first change");

        let stale = change(&deps, &kim, PASSWORD, "another new passphrase").await;

        assert_eq!(stale.expect_err("revoked").status(), 401);
    }
}
