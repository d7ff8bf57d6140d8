//! An in-memory store with the same contract as the DynamoDB one (unique ids, emails and
//! usernames, all-or-nothing writes, the tally of active Admins, sign-in counters), for handler
//! and domain tests that need no emulator.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::events::{DomainEvent, OutboxStore};
use crate::pagination::{Page, Position};
use crate::throttle::{AttemptCounter, Count, ThrottleKey};
use crate::users::{
    AccountUpdate, AccountWriter, AdminTally, AdminTallyReader, CreateUserError, TallyChange,
    UpdateAccountError, User, UserFilter, UserId, UserLister, UserReader, UserStatus, UserWriter,
    Username,
};

#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, User>,
    emails: HashMap<String, UserId>,
    usernames: HashMap<String, UserId>,
    outbox: Vec<DomainEvent>,
    /// The tally of active Admins, once a write created it.
    active_admins: Option<u64>,
    /// Sign-in counters: attempts and window start.
    counters: HashMap<ThrottleKey, Count>,
}

impl MemoryStore {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another test thread panicked; the maps stay consistent
        // because every change below happens after all checks.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State {
    fn counted_admins(&self) -> u64 {
        self.users.values().filter(|u| u.is_active_admin()).count() as u64
    }

    /// Whether the tally accepts `change`, as DynamoDB's conditions would.
    fn tally_accepts(&self, change: TallyChange) -> bool {
        match (self.active_admins, change.read.stored) {
            (None, false) => change.after() >= 1,
            (Some(stored), true) => i64::try_from(stored).unwrap_or(i64::MAX) + change.delta >= 1,
            _ => false,
        }
    }

    fn move_tally(&mut self, change: TallyChange) {
        let base = self.active_admins.unwrap_or(change.read.active);
        let moved = i64::try_from(base).unwrap_or(i64::MAX) + change.delta;
        self.active_admins = Some(u64::try_from(moved).unwrap_or(0));
    }
}

impl UserWriter for MemoryStore {
    async fn create_user(
        &self,
        user: &User,
        event: &DomainEvent,
        tally: Option<TallyChange>,
    ) -> Result<(), CreateUserError> {
        let username = Username::parse(&user.username)
            .map_err(|e| anyhow::anyhow!("invalid username: {}", e.message))?
            .unique_key();
        let mut state = self.state();
        if state.emails.contains_key(&user.email) {
            return Err(CreateUserError::EmailTaken);
        }
        if state.usernames.contains_key(&username) {
            return Err(CreateUserError::UsernameTaken);
        }
        if state.users.contains_key(&user.id) {
            return Err(CreateUserError::IdTaken);
        }
        if tally.is_some_and(|change| !state.tally_accepts(change)) {
            return Err(CreateUserError::Contended);
        }
        if let Some(change) = tally {
            state.move_tally(change);
        }
        state.emails.insert(user.email.clone(), user.id);
        state.usernames.insert(username, user.id);
        state.users.insert(user.id, user.clone());
        state.outbox.push(event.clone());
        Ok(())
    }
}

impl UserReader for MemoryStore {
    async fn user_by_id(&self, id: UserId) -> anyhow::Result<Option<User>> {
        Ok(self.state().users.get(&id).cloned())
    }

    async fn user_by_email(&self, email: &str) -> anyhow::Result<Option<User>> {
        let state = self.state();
        Ok(state.emails.get(email).and_then(|id| state.users.get(id)).cloned())
    }
}

impl AccountWriter for MemoryStore {
    async fn update_account(&self, update: &AccountUpdate<'_>) -> Result<(), UpdateAccountError> {
        let mut state = self.state();
        let version = |id: UserId| state.users.get(&id).map(|u| u.token_version);
        if let Some(change) = update.tally.filter(|change| !state.tally_accepts(*change)) {
            let decrease = change.read.stored && change.delta < 0;
            return Err(if decrease {
                UpdateAccountError::LastAdmin
            } else {
                UpdateAccountError::Contended
            });
        }
        if let Some(admin) = update.admin {
            let current = state.users.get(&admin.id);
            let still_admin = current
                .is_some_and(|a| a.is_active_admin() && a.token_version == admin.token_version);
            if !still_admin {
                return Err(UpdateAccountError::AdminRevoked);
            }
        }
        if version(update.before.id) != Some(update.before.token_version) {
            return Err(UpdateAccountError::Changed);
        }
        if let Some(change) = update.tally {
            state.move_tally(change);
        }
        state.users.insert(update.after.id, update.after.clone());
        state.outbox.extend(update.events.iter().cloned());
        Ok(())
    }
}

impl AdminTallyReader for MemoryStore {
    async fn admin_tally(&self) -> anyhow::Result<AdminTally> {
        let state = self.state();
        Ok(match state.active_admins {
            Some(active) => AdminTally { active, stored: true },
            None => AdminTally { active: state.counted_admins(), stored: false },
        })
    }
}

impl UserLister for MemoryStore {
    async fn users_page(
        &self,
        filter: UserFilter,
        limit: u32,
        after: Option<Position>,
    ) -> anyhow::Result<Page<User>> {
        // The order of the table's listings: active first, then by creation time and id.
        let order = |u: &User| (u.status == UserStatus::Disabled, u.created_at, u.id);
        let state = self.state();
        let mut users: Vec<&User> = state
            .users
            .values()
            .filter(|u| filter.role.is_none_or(|r| u.role == r))
            .filter(|u| filter.status.is_none_or(|s| u.status == s))
            .collect();
        users.sort_by_key(|u| order(u));
        let start = match after.as_ref().and_then(|p| p.get("id")?.parse::<u64>().ok()) {
            Some(last) => users.iter().position(|u| u.id.get() == last).map_or(0, |i| i + 1),
            None => 0,
        };
        let page: Vec<User> =
            users.iter().skip(start).take(limit as usize).map(|u| (*u).clone()).collect();
        let more = users.len() > start + page.len();
        let next = page
            .last()
            .filter(|_| more)
            .map(|last| Position::from([("id".to_owned(), last.id.to_string())]));
        Ok(Page { items: page, next })
    }
}

impl AttemptCounter for MemoryStore {
    async fn failures(
        &self,
        key: &ThrottleKey,
        now: i64,
        window_seconds: u32,
    ) -> anyhow::Result<Option<Count>> {
        let state = self.state();
        let current =
            state.counters.get(key).filter(|c| c.window_start > now - i64::from(window_seconds));
        Ok(current.copied())
    }

    async fn count_failure(
        &self,
        key: &ThrottleKey,
        now: i64,
        window_seconds: u32,
    ) -> anyhow::Result<Count> {
        let mut state = self.state();
        let fresh = Count { failures: 0, window_start: now };
        let count = state.counters.entry(key.clone()).or_insert(fresh);
        if count.window_start <= now - i64::from(window_seconds) {
            *count = fresh;
        }
        count.failures += 1;
        Ok(*count)
    }

    async fn reset(&self, key: &ThrottleKey) -> anyhow::Result<()> {
        self.state().counters.remove(key);
        Ok(())
    }
}

impl OutboxStore for MemoryStore {
    async fn keep(&self, event: &DomainEvent) -> anyhow::Result<()> {
        self.state().outbox.push(event.clone());
        Ok(())
    }

    async fn clear(&self, event: &DomainEvent) -> anyhow::Result<()> {
        self.state().outbox.retain(|e| e.id() != event.id());
        Ok(())
    }

    async fn pending(
        &self,
        before: time::OffsetDateTime,
        limit: u32,
    ) -> anyhow::Result<Vec<DomainEvent>> {
        let state = self.state();
        let due = state.outbox.iter().filter(|e| e.detail.occurred_at < before);
        Ok(due.take(limit as usize).cloned().collect())
    }
}

impl crate::app::Deps<MemoryStore, crate::events::RecordingBus> {
    /// Dependencies for handler tests: an empty in-memory store, a recording bus and the local
    /// development key.
    pub fn in_memory() -> Self {
        let config = crate::Config::from_lookup(|key| (key == "APP_ENV").then(|| "local".into()))
            .unwrap_or_else(|e| unreachable!("the local configuration is valid: {e}"));
        Self::with_parts(MemoryStore::default(), crate::events::RecordingBus::default(), &config)
            .unwrap_or_else(|e| unreachable!("the local configuration is valid: {e}"))
    }
}
