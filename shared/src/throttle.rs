//! Sign-in throttling: attempts to prove a password are counted per account (the normalised
//! email, whether or not an account has it) and per source address, in fixed windows that start
//! with the first attempt. Each attempt takes a slot before the password is checked, so parallel
//! guesses cannot slip past the limit; a success gives its address slot back and clears the
//! account's counter. Past the limit the answer is 429 with `Retry-After`, whatever the email, so
//! the answer never tells whether an account exists.

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

/// A counter after an attempt was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Attempts in the current window, this one included.
    pub attempts: u32,
    /// When the window started (Unix seconds).
    pub window_start: i64,
}

/// Counters of attempts, one per key, that expire with their window.
pub trait AttemptCounter: Send + Sync {
    /// Counts one attempt under `key`: in the current window if it started less than
    /// `window_seconds` before `now`, else in a new window starting at `now`.
    fn count_attempt(
        &self,
        key: &ThrottleKey,
        now: i64,
        window_seconds: u32,
    ) -> impl Future<Output = anyhow::Result<Count>> + Send;

    /// Takes back one attempt, if the counter is still in the window that started at
    /// `window_start`.
    fn uncount_attempt(
        &self,
        key: &ThrottleKey,
        window_start: i64,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

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

/// The slots one attempt took, to give back if it succeeds.
#[derive(Debug)]
pub struct Ticket {
    account: ThrottleKey,
    address: ThrottleKey,
    address_window: i64,
}

/// The throttle of password checks (sign-in, and the current password of a password change).
pub struct LoginThrottle<'a, C> {
    pub counter: &'a C,
    pub config: ThrottleConfig,
}

impl<C: AttemptCounter> LoginThrottle<'_, C> {
    /// Counts an attempt for `email_as_sent` from `source_ip`; refuses it when either counter is
    /// past its limit.
    pub async fn begin(
        &self,
        email_as_sent: &str,
        source_ip: &str,
        now: OffsetDateTime,
    ) -> Result<Ticket, ThrottleError> {
        let (account, address) =
            (ThrottleKey::account(email_as_sent), ThrottleKey::address(source_ip));
        let (now, window) = (now.unix_timestamp(), self.config.window_seconds);
        let (by_account, by_address) = futures::join!(
            self.counter.count_attempt(&account, now, window),
            self.counter.count_attempt(&address, now, window),
        );
        let (by_account, by_address) = (by_account?, by_address?);

        let limits = [
            ("account", by_account, self.config.max_failures_per_account),
            ("address", by_address, self.config.max_failures_per_address),
        ];
        let mut retry_after_seconds = 0;
        for (scope, count, limit) in limits {
            if count.attempts > limit {
                let ends = count.window_start + i64::from(window);
                let wait = u64::try_from(ends - now).unwrap_or(0).max(1);
                info!(scope, attempts = count.attempts, "sign-in attempt throttled");
                retry_after_seconds = retry_after_seconds.max(wait);
            }
        }
        if retry_after_seconds > 0 {
            return Err(ThrottleError::Throttled { retry_after_seconds });
        }
        Ok(Ticket { account, address, address_window: by_address.window_start })
    }

    /// After a correct password: the account's counter starts again and the address gets its
    /// slot back. A failure here is logged, never a reason to refuse the success.
    pub async fn succeeded(&self, ticket: Ticket) {
        let (reset, uncount) = futures::join!(
            self.counter.reset(&ticket.account),
            self.counter.uncount_attempt(&ticket.address, ticket.address_window),
        );
        if let Err(e) = reset.and(uncount) {
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

    #[tokio::test]
    async fn the_attempt_after_the_account_limit_waits_until_the_window_ends() {
        let store = MemoryStore::default();
        let throttle = throttle(&store, 3, 100);
        for second in 0..3 {
            assert!(throttle.begin("kim@example.com", "192.0.2.1", at(second)).await.is_ok());
        }

        let refused = throttle.begin(" KIM@example.com", "192.0.2.9", at(10)).await;

        assert_eq!(retry_after(refused), Some(50));
        assert!(throttle.begin("kim@example.com", "192.0.2.1", at(60)).await.is_ok());
    }

    #[tokio::test]
    async fn one_address_trying_many_emails_is_stopped_by_the_address_limit() {
        let store = MemoryStore::default();
        let throttle = throttle(&store, 3, 4);
        for n in 0..4 {
            let email = format!("person{n}@example.com");
            assert!(throttle.begin(&email, "198.51.100.7", at(n)).await.is_ok(), "{n}");
        }

        let fifth = throttle.begin("person4@example.com", "198.51.100.7", at(5)).await;
        let elsewhere = throttle.begin("person4@example.com", "198.51.100.8", at(5)).await;

        assert_eq!(retry_after(fifth), Some(55));
        assert!(elsewhere.is_ok(), "another address is not affected");
    }

    #[tokio::test]
    async fn a_success_clears_the_account_and_gives_the_address_its_slot_back() {
        let store = MemoryStore::default();
        let throttle = throttle(&store, 2, 3);
        throttle.begin("lee@example.com", "203.0.113.5", at(0)).await.expect("first");
        let ticket = throttle.begin("lee@example.com", "203.0.113.5", at(1)).await.expect("second");

        throttle.succeeded(ticket).await;

        for second in 2..4 {
            let again = throttle.begin("lee@example.com", "203.0.113.5", at(second)).await;
            assert!(again.is_ok(), "the account counter started again");
        }
        let address_full = throttle.begin("other@example.com", "203.0.113.5", at(4)).await;
        assert!(retry_after(address_full).is_some(), "1 + 2 attempts counted, the 4th is over 3");
    }

    #[test]
    fn keys_hold_digests_of_the_normalised_email_only() {
        let key = ThrottleKey::account(" Kim@Example.COM ");

        assert_eq!(key, ThrottleKey::account("kim@example.com"));
        assert!(!key.as_str().contains("kim"));
        assert_eq!(ThrottleKey::address("x".repeat(10_000).as_str()).as_str().len(), 8 + 64);
    }
}
