//! Password hashing with argon2id, off the async threads.
//!
//! The parameters live here only ([`PARAMS`]); tests and the dummy hash use the same constant.

use anyhow::Context;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tracing::Span;

/// OWASP's recommended argon2id parameters: 19 MiB of memory, 2 passes, 1 lane.
pub const PARAMS: (u32, u32, u32) = (19 * 1024, 2, 1);

/// A hash of a random password made with [`PARAMS`]: verifying against it costs what verifying a
/// real hash costs, so an unknown email takes as long as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$\
    gZiV/M1gPc22ElAH/Jh1Hw$CWOrkoo7oJBQ/iyh7uJ0LO2aLEfrHwTWllSAxT0zRno";

/// Makes the C allocator give argon2's memory back to the system after each use.
///
/// Every hash and verification allocates [`PARAMS`]' memory (19 MiB) and frees it. glibc's
/// malloc serves the first such block with its own mapping, but on freeing it raises the size
/// above which it maps blocks, so later blocks come from its heaps, which keep freed memory: a
/// login function measured 88 MiB resident after 120 logins, and 20 rounds of hashing and
/// verifying 420 MiB (`make bench`, bench/NOTES.md). Fixing the threshold at glibc's default
/// keeps each block in its own mapping, returned when freed (22 MiB after the same 20 rounds).
fn return_hash_memory_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: `mallopt` changes one setting of glibc's allocator under the allocator's
            // own lock; it may be called from any thread at any time. 128 KiB is glibc's
            // default threshold, made fixed.
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
        });
    }
}

fn hasher() -> Argon2<'static> {
    let (memory_kib, passes, lanes) = PARAMS;
    // The constants are valid: `password_params_are_accepted` proves it.
    let params = Params::new(memory_kib, passes, lanes, None).unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string.
pub async fn hash(password: SecretString) -> anyhow::Result<String> {
    return_hash_memory_to_the_system();
    blocking(move || {
        let phc = hasher()
            .hash_password(password.expose_secret().as_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("Failed to hash a password")?;
        Ok(phc.to_string())
    })
    .await
}

/// Checks a password against a stored PHC string; with `None` (no such user), checks it against
/// the dummy hash and answers `false`, taking the same time.
pub async fn verify(password: SecretString, stored: Option<String>) -> anyhow::Result<bool> {
    return_hash_memory_to_the_system();
    blocking(move || {
        let (phc, real) = match &stored {
            Some(phc) => (phc.as_str(), true),
            None => (DUMMY_HASH, false),
        };
        let parsed = PasswordHash::new(phc)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("Failed to parse a stored password hash")?;
        let matches =
            hasher().verify_password(password.expose_secret().as_bytes(), &parsed).is_ok();
        Ok(real && matches)
    })
    .await
}

/// Runs CPU-heavy work on the blocking pool, inside the caller's span.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let span = Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .context("Password hashing task failed")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_params_are_accepted() {
        let (m, t, p) = PARAMS;
        assert!(Params::new(m, t, p, None).is_ok());
    }

    #[test]
    fn the_dummy_hash_uses_the_same_parameters() {
        let (m, t, p) = PARAMS;
        let expected = format!("$argon2id$v=19$m={m},t={t},p={p}$");
        assert!(DUMMY_HASH.starts_with(&expected), "{DUMMY_HASH}");
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[tokio::test]
    async fn a_hash_verifies_its_own_password_only() {
        let phc = hash(SecretString::from("correct horse")).await.expect("hash");

        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(SecretString::from("correct horse"), Some(phc.clone())).await.unwrap());
        assert!(!verify(SecretString::from("wrong horse"), Some(phc)).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        assert!(!verify(SecretString::from("anything"), None).await.unwrap());
    }
}
