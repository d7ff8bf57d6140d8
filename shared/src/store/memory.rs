//! An in-memory store with the same contract as the DynamoDB one (unique ids, emails and
//! usernames, all-or-nothing creation), for handler tests that need no emulator.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::events::{DomainEvent, OutboxStore};
use crate::users::{CreateUserError, User, UserId, UserReader, UserWriter, Username};

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
}

impl MemoryStore {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another test thread panicked; the maps stay consistent
        // because every change below happens after all checks.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl UserWriter for MemoryStore {
    async fn create_user(&self, user: &User, event: &DomainEvent) -> Result<(), CreateUserError> {
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
            .unwrap_or_else(|e| unreachable!("the development key is valid: {e}"))
    }
}
