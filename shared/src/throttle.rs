//! Sign-in throttling: failed attempts to prove a password are counted per account (the
//! normalised email, whether or not an account has it) and per source address, in fixed windows
//! that start with the first failure. Both counters are read before the password is checked;
//! past either limit the answer is 429 with `Retry-After`, whatever the email, so the answer
//! never tells whether an account exists. A failure adds one to both; a success clears the
//! account's counter.
//!
//! Guesses sent at the same moment are all checked before their failures are counted, so a
//! burst can exceed the limit once per window; API Gateway's rate limit bounds its size.

use std::future::Future;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::error::ApiError;
use crate::users::Email;

/// The limits, from `LOGIN_MAX_FAILURES`, `LOGIN_MAX_FAILURES_PER_ADDRESS` and
/// `LOGIN_WINDOW_SECONDS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failed attempts one email may have in a window; the next one is refused.
    pub max_failures_per_account: u32,
    /// Failed attempts one source address may have in a window, over all emails.
    pub max_failures_per_address: u32,
    pub window_seconds: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self { max_failures_per_account: 5, max_failures_per_address: 50, window_seconds: 900 }
    }
}

/// What a counter is kept for. Keys hold a SHA-256 digest, never the email or the address: the
/// key's length is bounded whatever a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ThrottleKey(String);

impl ThrottleKey {
    /// The counter of one email, in the form accounts are looked up by.
    pub fn account(email_as_sent: &str) -> Self {
        Self(format!("ACCOUNT#{}", digest(&Email::normalise(email_as_sent))))
    }

    /// The counter of one source address.
    pub fn address(source_ip: &str) -> Self {
        Self(format!("ADDRESS#{}", digest(source_ip.trim())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The failures of one key in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub failures: u32,
    /// When the window started (Unix seconds).
    pub window_start: i64,
}

/// Counters of failures, one per key, that expire with their window.
pub trait AttemptCounter: Send + Sync {
    /// The failures under `key` in a window that started less than `window_seconds` before
    /// `now`; `None` when there is no such window.
    fn failures(
        &self,
        key: &ThrottleKey,
        now: i64,
        window_seconds: u32,
    ) -> impl Future<Output = anyhow::Result<Option<Count>>> + Send;

    /// Counts one failure under `key`: in the current window, or in a new one starting at
    /// `now` when the last one is over.
    fn count_failure(
        &self,
        key: &ThrottleKey,
        now: i64,
        window_seconds: u32,
    ) -> impl Future<Output = anyhow::Result<Count>> + Send;

    /// Forgets the counter.
    fn reset(&self, key: &ThrottleKey) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Why an attempt was not let through.
#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    #[error("Too many failed sign-in attempts. Try again in {retry_after_seconds} seconds.")]
    Throttled { retry_after_seconds: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<ThrottleError> for ApiError {
    fn from(error: ThrottleError) -> Self {
        match error {
            ThrottleError::Throttled { retry_after_seconds } => {
                Self::TooManyRequests { detail: error.to_string(), retry_after_seconds }
            }
            ThrottleError::Unexpected(e) => e.into(),
        }
    }
}

/// An attempt let through: what to count when it fails, or clear when it succeeds.
#[derive(Debug)]
pub struct Ticket {
    account: ThrottleKey,
    address: ThrottleKey,
    now: i64,
    account_has_failures: bool,
}

/// The throttle of password checks (sign-in, and the current password of a password change).
pub struct LoginThrottle<'a, C> {
    pub counter: &'a C,
    pub config: ThrottleConfig,
}

impl<C: AttemptCounter> LoginThrottle<'_, C> {
    /// Lets an attempt for `email_as_sent` from `source_ip` through, unless either counter has
    /// reached its limit.
    pub async fn check(
        &self,
        email_as_sent: &str,
        source_ip: &str,
        now: OffsetDateTime,
    ) -> Result<Ticket, ThrottleError> {
        let account = ThrottleKey::account(email_as_sent);
        let address = ThrottleKey::address(source_ip);
        let (now, window) = (now.unix_timestamp(), self.config.window_seconds);
        let (by_account, by_address) = futures::join!(
            self.counter.failures(&account, now, window),
            self.counter.failures(&address, now, window),
        );
        let (by_account, by_address) = (by_account?, by_address?);

        let limits = [
            ("account", by_account, self.config.max_failures_per_account),
            ("address", by_address, self.config.max_failures_per_address),
        ];
        let mut retry_after_seconds = 0;
        for (scope, count, limit) in limits {
            let Some(count) = count.filter(|c| c.failures >= limit) else { continue };
            let ends = count.window_start + i64::from(window);
            let wait = u64::try_from(ends - now).unwrap_or(0).max(1);
            info!(scope, failures = count.failures, "sign-in attempt throttled");
            retry_after_seconds = retry_after_seconds.max(wait);
        }
        if retry_after_seconds > 0 {
            return Err(ThrottleError::Throttled { retry_after_seconds });
        }
        Ok(Ticket { account, address, now, account_has_failures: by_account.is_some() })
    }

    /// After a wrong password: one more failure for the email and for the address.
    pub async fn failed(&self, ticket: Ticket) -> anyhow::Result<()> {
        let window = self.config.window_seconds;
        let (account, address) = futures::join!(
            self.counter.count_failure(&ticket.account, ticket.now, window),
            self.counter.count_failure(&ticket.address, ticket.now, window),
        );
        account.and(address).map(|_| ())
    }

    /// After a correct password: the email's failures are forgotten. A failure here is logged,
    /// never a reason to refuse the success.
    pub async fn succeeded(&self, ticket: Ticket) {
        if !ticket.account_has_failures {
            return;
        }
        if let Err(e) = self.counter.reset(&ticket.account).await {
            warn!(error.cause_chain = ?e, "a sign-in counter was not cleared");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn throttle(store: &MemoryStore, account: u32, address: u32) -> LoginThrottle<'_, MemoryStore> {
        let config = ThrottleConfig {
            max_failures_per_account: account,
            max_failures_per_address: address,
            window_seconds: 60,
        };
        LoginThrottle { counter: store, config }
    }

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).expect("a time")
    }

    fn retry_after(result: Result<Ticket, ThrottleError>) -> Option<u64> {
        match result {
            Err(ThrottleError::Throttled { retry_after_seconds }) => Some(retry_after_seconds),
            _ => None,
        }
    }

    /// An attempt that passes the check and fails.
    async fn fail(throttle: &LoginThrottle<'_, MemoryStore>, email: &str, ip: &str, second: i64) {
        let ticket = throttle.check(email, ip, at(second)).await.expect("let through");
        throttle.failed(ticket).await.expect("counted");
    }

    #[tokio::test]
    async fn after_the_account_limit_attempts_wait_until_the_window_ends() {
        let store = MemoryStore::default();
        let throttle = throttle(&store, 3, 100);
        for second in 0..3 {
            fail(&throttle, "kim@example.com", "192.0.2.1", second).await;
        }

        let refused = throttle.check(" KIM@example.com", "192.0.2.9", at(10)).await;

        assert_eq!(retry_after(refused), Some(50));
        assert!(throttle.check("kim@example.com", "192.0.2.1", at(60)).await.is_ok());
    }

    #[tokio::test]
    async fn one_address_trying_many_emails_is_stopped_by_the_address_limit() {
        let store = MemoryStore::default();
        let throttle = throttle(&store, 3, 4);
        for n in 0..4 {
            fail(&throttle, &format!("person{n}@example.com"), "198.51.100.7", n).await;
        }

        let fifth = throttle.check("person4@example.com", "198.51.100.7", at(5)).await;
        let elsewhere = throttle.check("person4@example.com", "198.51.100.8", at(5)).await;

        assert_eq!(retry_after(fifth), Some(55));
        assert!(elsewhere.is_ok(), "another address is not affected");
    }

    #[tokio::test]
    async fn a_success_clears_the_accounts_failures_but_not_the_addresss() {
        let store = MemoryStore::default();
        let throttle = throttle(&store, 2, 3);
        fail(&throttle, "lee@example.com", "203.0.113.5", 0).await;
        let ticket = throttle.check("lee@example.com", "203.0.113.5", at(1)).await.expect("ok");

        throttle.succeeded(ticket).await;

        fail(&throttle, "lee@example.com", "203.0.113.5", 2).await;
        assert!(throttle.check("lee@example.com", "203.0.113.5", at(3)).await.is_ok());
        fail(&throttle, "other@example.com", "203.0.113.5", 4).await;
        let address_full = throttle.check("third@example.com", "203.0.113.5", at(5)).await;
        assert!(retry_after(address_full).is_some(), "three failures from the address");
    }

    #[tokio::test]
    async fn successes_alone_are_never_throttled() {
        let store = MemoryStore::default();
        let throttle = throttle(&store, 1, 1);

        for second in 0..10 {
            let ticket = throttle.check("kim@example.com", "192.0.2.1", at(second)).await;
            throttle.succeeded(ticket.expect("let through")).await;
        }
    }

    #[test]
    fn keys_hold_digests_of_the_normalised_email_only() {
        let key = ThrottleKey::account(" Kim@Example.COM ");

        assert_eq!(key, ThrottleKey::account("kim@example.com"));
        assert!(!key.as_str().contains("kim"));
        assert_eq!(ThrottleKey::address("x".repeat(10_000).as_str()).as_str().len(), 8 + 64);
    }
}
