//! Account management by Admins: `GET /users` (by role and status, one Query per page) and
//! `PATCH /users/{id}` (role, status). The last active Admin can be neither demoted nor
//! disabled, even when two Admins act at once: every write that changes who is an active Admin
//! moves a tally of them in the same transaction, on the condition that it stays at one or more,
//! and the acting Admin must still be an active Admin when the transaction commits.

use std::time::Duration;

use serde::Deserialize;
use tracing::info;
use utoipa::ToSchema;

use super::profile::UserProfile;
use super::{
    AccountUpdate, AccountWriter, AdminTallyReader, Role, TallyChange, UpdateAccountError, User,
    UserFilter, UserId, UserLister, UserReader, UserStatus,
};
use crate::auth::{AuthError, AuthedUser};
use crate::error::ApiError;
use crate::events::{Action, Delivery, DomainEvent, EntityType, EventBus, OutboxStore, Trace};
use crate::ids::IdGen;
use crate::pagination::{Page, Position};
use crate::session::SignedIn;

/// How often a change that lost to a concurrent write is tried before giving up (503).
const WRITE_ATTEMPTS: u32 = 4;

impl UserFilter {
    /// The filters of `GET /users` from their query values; 422 for a value that is neither a
    /// role nor a status.
    pub fn from_query(role: Option<&str>, status: Option<&str>) -> Result<Self, ApiError> {
        let role = role
            .map(|raw| raw.trim().parse::<Role>().map_err(|e| ApiError::invalid_field("role", e)))
            .transpose()?;
        let status = status
            .map(|raw| {
                raw.trim().parse::<UserStatus>().map_err(|e| ApiError::invalid_field("status", e))
            })
            .transpose()?;
        Ok(Self { role, status })
    }

    /// The listing a cursor is bound to.
    pub fn list_name(&self) -> String {
        let role = self.role.map(Role::as_str).unwrap_or_default();
        let status = self.status.map(UserStatus::as_str).unwrap_or_default();
        format!("users:{role}|{status}")
    }
}

/// Reads a user id from a path parameter: plain digits, 1 to 2^53 - 1.
pub fn parse_user_id(raw: Option<&str>) -> Result<UserId, ApiError> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|id| (1..=crate::ids::MAX_ID).contains(id))
        .map(UserId::new)
        .ok_or_else(|| ApiError::invalid_field("id", "must be a positive integer"))
}

/// A page of accounts, for Admins only.
pub async fn list_users(
    store: &impl UserLister,
    caller: AuthedUser,
    filter: UserFilter,
    limit: u32,
    after: Option<Position>,
) -> Result<Page<UserProfile>, ApiError> {
    caller.require(&[Role::Admin], "Only Admins can list accounts.")?;
    let page = store.users_page(filter, limit, after).await?;
    Ok(Page { items: page.items.into_iter().map(UserProfile::from).collect(), next: page.next })
}

/// What an Admin may change of an account.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    /// The new role.
    #[serde(default)]
    pub role: Option<Role>,
    /// `active` or `disabled`; a disabled account cannot sign in and its tokens stop working.
    #[serde(default)]
    pub status: Option<UserStatus>,
}

impl AccountPatch {
    /// 422 unless the patch changes something.
    pub fn check(self) -> Result<Self, ApiError> {
        if self.role.is_none() && self.status.is_none() {
            return Err(ApiError::invalid_field("body", "give `role`, `status` or both"));
        }
        Ok(self)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("Only Admins can change accounts.")]
    NotAdmin,
    #[error("No account has this id.")]
    NotFound,
    #[error("This change would leave no active Admin: promote or enable another Admin first.")]
    LastAdmin,
    /// The acting Admin was demoted, disabled or changed while the request ran.
    #[error(transparent)]
    Revoked(AuthError),
    #[error("too much contention")]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<ManageError> for ApiError {
    fn from(error: ManageError) -> Self {
        match error {
            ManageError::NotAdmin => Self::Forbidden(error.to_string()),
            ManageError::NotFound => Self::NotFound(error.to_string()),
            ManageError::LastAdmin => Self::Conflict(error.to_string()),
            ManageError::Revoked(auth) => auth.into(),
            ManageError::Busy => Self::Busy,
            ManageError::Unexpected(e) => e.into(),
        }
    }
}

/// Applies an Admin's patch to an account: writes the new role and status with the next token
/// version (which ends the account's sessions), the tally of active Admins when it moves, and
/// one event per changed field, in one transaction; then publishes the events. A patch that
/// changes nothing writes nothing. `read` is the target account as read with the Admin's (see
/// [`UserReader::account_and_user`]); a retry reads it again.
#[allow(clippy::too_many_arguments, reason = "each is a distinct input of the change")]
pub async fn update_account<S, B>(
    store: &S,
    ids: &impl IdGen,
    trace: &Trace,
    delivery: &Delivery<'_, B, S>,
    admin: &SignedIn,
    target: UserId,
    read: Option<User>,
    patch: AccountPatch,
) -> Result<UserProfile, ManageError>
where
    S: UserReader + AccountWriter + AdminTallyReader + OutboxStore,
    B: EventBus,
{
    if admin.caller.role != Role::Admin {
        return Err(ManageError::NotAdmin);
    }
    let own_account = target == admin.caller.id;
    let mut first_read = Some(read);
    for attempt in 1..=WRITE_ATTEMPTS {
        // Their own account is the one their token was just checked against.
        let before = if own_account {
            admin.account.clone()
        } else {
            let found = match first_read.take() {
                Some(found) => found,
                None => store.user_by_id(target).await?,
            };
            found.ok_or(ManageError::NotFound)?
        };
        let mut after = before.clone();
        after.role = patch.role.unwrap_or(before.role);
        after.status = patch.status.unwrap_or(before.status);
        if (after.role, after.status) == (before.role, before.status) {
            return Ok(before.into());
        }
        after.token_version = before.token_version + 1;

        let tally = if before.is_active_admin() == after.is_active_admin() {
            None
        } else {
            TallyChange::between(Some(&before), &after, store.admin_tally().await?)
        };
        if tally.is_some_and(|t| t.after() < 1) {
            return Err(ManageError::LastAdmin);
        }
        let event =
            |action| DomainEvent::by(ids, trace, admin.caller, action, EntityType::User, target);
        let mut events = Vec::new();
        if after.role != before.role {
            events.push(event(Action::ChangeUserRole));
        }
        if after.status != before.status {
            events.push(event(Action::ChangeUserStatus));
        }
        let update = AccountUpdate {
            before: &before,
            after: &after,
            admin: (!own_account).then_some(&admin.account),
            tally,
            events: &events,
        };

        match store.update_account(&update).await {
            Ok(()) => {
                info!(
                    user_id = %target,
                    role = after.role.as_str(),
                    status = after.status.as_str(),
                    "account changed by an Admin"
                );
                for event in events {
                    delivery.after_commit(event).await;
                }
                return Ok(after.into());
            }
            Err(UpdateAccountError::LastAdmin) => return Err(ManageError::LastAdmin),
            Err(UpdateAccountError::AdminRevoked) => {
                return Err(ManageError::Revoked(AuthError::Revoked));
            }
            Err(UpdateAccountError::Changed) if own_account => {
                return Err(ManageError::Revoked(AuthError::Revoked));
            }
            Err(UpdateAccountError::Changed | UpdateAccountError::Contended) => {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
            }
            Err(UpdateAccountError::Unexpected(e)) => return Err(e.into()),
        }
    }
    Err(ManageError::Busy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::RecordingBus;
    use crate::ids::RandomIds;
    use crate::session::check;
    use crate::store::memory::MemoryStore;
    use crate::users::register::{NewUser, RegisterRequest, Registrar, register};

    struct World {
        store: MemoryStore,
        bus: RecordingBus,
    }

    fn trace() -> Trace {
        Trace::new(None, time::OffsetDateTime::now_utc())
    }

    impl World {
        fn new() -> Self {
            Self { store: MemoryStore::default(), bus: RecordingBus::default() }
        }

        fn delivery(&self) -> Delivery<'_, RecordingBus, MemoryStore> {
            Delivery { bus: &self.bus, outbox: &self.store }
        }

        async fn account(&self, name: &str, role: Role) -> UserId {
            let request = RegisterRequest {
                username: name.into(),
                email: format!("{name}@example.com"),
                password: "correct horse battery".into(),
                role,
            };
            let new_user = NewUser::try_from(request).expect("valid");
            let registrar = Registrar::Operator;
            let created =
                register(&self.store, &RandomIds, &trace(), &self.delivery(), registrar, new_user)
                    .await
                    .expect("stored");
            created.id
        }

        /// The account as a token of its current session signs it in.
        async fn signed_in(&self, id: UserId) -> SignedIn {
            let account = self.store.user_by_id(id).await.expect("read").expect("stored");
            let token = crate::auth::VerifiedToken {
                id,
                role: account.role,
                token_version: account.token_version,
            };
            check(token, Some(account)).expect("current")
        }

        async fn patch(
            &self,
            admin: &SignedIn,
            target: UserId,
            patch: AccountPatch,
        ) -> Result<UserProfile, ManageError> {
            let read = self.store.user_by_id(target).await.expect("read");
            update_account(
                &self.store,
                &RandomIds,
                &trace(),
                &self.delivery(),
                admin,
                target,
                read,
                patch,
            )
            .await
        }
    }

    fn demote() -> AccountPatch {
        AccountPatch { role: Some(Role::Patient), status: None }
    }

    fn disable() -> AccountPatch {
        AccountPatch { role: None, status: Some(UserStatus::Disabled) }
    }

    #[tokio::test]
    async fn the_last_active_admin_can_be_neither_demoted_nor_disabled() {
        let world = World::new();
        let only = world.account("only", Role::Admin).await;
        let admin = world.signed_in(only).await;

        for patch in [demote(), disable()] {
            let error = world.patch(&admin, only, patch).await.expect_err("refused");
            assert!(matches!(error, ManageError::LastAdmin), "{error:?}");
        }
        assert_eq!(world.store.admin_tally().await.expect("tally").active, 1);
    }

    #[tokio::test]
    async fn with_two_admins_one_may_demote_the_other_then_not_itself() {
        let world = World::new();
        let (ann, bob) =
            (world.account("ann", Role::Admin).await, world.account("bob", Role::Admin).await);
        let ann_session = world.signed_in(ann).await;

        let demoted = world.patch(&ann_session, bob, demote()).await.expect("demoted");

        assert_eq!(demoted.role, Role::Patient);
        let error = world.patch(&ann_session, ann, demote()).await.expect_err("last one");
        assert!(matches!(error, ManageError::LastAdmin));
        let events: Vec<_> = world.bus.published().iter().map(|e| e.detail.action).collect();
        assert!(events.contains(&Action::ChangeUserRole), "{events:?}");
    }

    #[tokio::test]
    async fn an_admin_demoted_meanwhile_can_no_longer_change_accounts() {
        let world = World::new();
        let (ann, bob, cid) = (
            world.account("ann", Role::Admin).await,
            world.account("bob", Role::Admin).await,
            world.account("cid", Role::Admin).await,
        );
        let (ann_session, bob_session) = (world.signed_in(ann).await, world.signed_in(bob).await);

        world.patch(&ann_session, bob, demote()).await.expect("ann demotes bob");
        let late = world.patch(&bob_session, cid, disable()).await;

        assert!(matches!(late, Err(ManageError::Revoked(_))), "{late:?}");
        let cid_now = world.store.user_by_id(cid).await.unwrap().unwrap();
        assert_eq!(cid_now.status, UserStatus::Active);
    }

    #[tokio::test]
    async fn a_change_ends_the_sessions_and_enabling_again_counts_the_admin_again() {
        let world = World::new();
        let (ann, bob) =
            (world.account("ann", Role::Admin).await, world.account("bob", Role::Admin).await);
        let ann_session = world.signed_in(ann).await;
        let bob_before = world.store.user_by_id(bob).await.unwrap().unwrap();

        world.patch(&ann_session, bob, disable()).await.expect("disabled");
        assert_eq!(world.store.admin_tally().await.unwrap().active, 1);
        let enable = AccountPatch { role: None, status: Some(UserStatus::Active) };
        let enabled = world.patch(&ann_session, bob, enable).await.expect("enabled");

        assert_eq!(enabled.status, UserStatus::Active);
        assert_eq!(world.store.admin_tally().await.unwrap().active, 2);
        let bob_after = world.store.user_by_id(bob).await.unwrap().unwrap();
        assert_eq!(bob_after.token_version, bob_before.token_version + 2);
    }

    #[tokio::test]
    async fn patients_cannot_manage_and_unknown_ids_are_404() {
        let world = World::new();
        let admin = world.account("ann", Role::Admin).await;
        let patient = world.account("pat", Role::Patient).await;
        let patient_session = world.signed_in(patient).await;

        let forbidden = world.patch(&patient_session, admin, disable()).await;
        let missing =
            world.patch(&world.signed_in(admin).await, UserId::new(12345), disable()).await;

        assert!(matches!(forbidden, Err(ManageError::NotAdmin)));
        assert!(matches!(missing, Err(ManageError::NotFound)));
    }

    #[tokio::test]
    async fn a_patch_that_changes_nothing_writes_nothing() {
        let world = World::new();
        let admin = world.account("ann", Role::Admin).await;
        let session = world.signed_in(admin).await;
        let published = world.bus.published().len();

        let same = AccountPatch { role: Some(Role::Admin), status: Some(UserStatus::Active) };
        world.patch(&session, admin, same).await.expect("nothing to do");

        assert_eq!(world.bus.published().len(), published);
        assert!(AccountPatch::default().check().is_err());
    }

    #[tokio::test]
    async fn lists_filter_by_role_and_status_and_page() {
        let world = World::new();
        let admin = world.account("ann", Role::Admin).await;
        for name in ["p1", "p2", "p3"] {
            world.account(name, Role::Patient).await;
        }
        let doctor = world.account("doc", Role::Doctor).await;
        let session = world.signed_in(admin).await;
        world.patch(&session, doctor, disable()).await.expect("disabled");
        let caller = session.caller;

        let patients = UserFilter { role: Some(Role::Patient), status: None };
        let first = list_users(&world.store, caller, patients, 2, None).await.expect("page");
        let rest = list_users(&world.store, caller, patients, 2, first.next.clone()).await.unwrap();
        let disabled = UserFilter { role: None, status: Some(UserStatus::Disabled) };
        let off = list_users(&world.store, caller, disabled, 10, None).await.unwrap();

        assert_eq!((first.items.len(), rest.items.len()), (2, 1));
        assert!(first.next.is_some() && rest.next.is_none());
        assert_eq!(off.items.iter().map(|u| u.id).collect::<Vec<_>>(), vec![doctor]);
        let all = list_users(&world.store, caller, UserFilter::default(), 10, None).await.unwrap();
        assert_eq!(all.items.last().map(|u| u.status), Some(UserStatus::Disabled), "active first");
    }

    #[test]
    fn user_ids_in_paths_are_plain_positive_integers() {
        assert_eq!(parse_user_id(Some("42")).expect("valid"), UserId::new(42));
        for bad in [
            None,
            Some(""),
            Some("0"),
            Some("-1"),
            Some("+4"),
            Some("4e2"),
            Some("9007199254740992"),
        ] {
            assert!(parse_user_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn filters_are_read_from_the_query_or_refused_by_name() {
        let filter = UserFilter::from_query(Some("Doctor"), Some("disabled")).expect("valid");
        assert_eq!(filter.list_name(), "users:Doctor|disabled");

        for (role, status, field) in
            [(Some("doctor"), None, "role"), (None, Some("gone"), "status")]
        {
            match UserFilter::from_query(role, status) {
                Err(ApiError::Validation { errors, .. }) => assert_eq!(errors[0].field, field),
                other => panic!("{other:?}"),
            }
        }
    }
}
