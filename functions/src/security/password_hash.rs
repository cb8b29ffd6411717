//! Argon2id password hashing, off the async workers.
//!
//! Parameters are OWASP's first recommendation (m = 19 MiB, t = 2, p = 1).
//! Each hash takes tens of milliseconds of CPU and 19 MiB of memory, so it
//! runs on tokio's blocking pool behind a semaphore: a burst of logins cannot
//! stall WebSocket traffic on the async workers, nor exhaust memory.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::ExposeSecret as _;
use tokio::sync::Semaphore;

use crate::domain::Password;

/// Memory cost in KiB (OWASP: 19 MiB).
const M_COST_KIB: u32 = 19 * 1024;
/// Iterations (OWASP: 2).
const T_COST: u32 = 2;
/// Lanes (OWASP: 1).
const P_COST: u32 = 1;

/// Hashing failed for a reason that is not the password's fault.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// A real Argon2id hash (same parameters) of a random password nobody
/// kept, verified against when a user does not exist so that unknown names
/// take as long as wrong passwords. A constant, so a cold Lambda does not
/// spend a hash on making one; it can never log anyone in, since an unknown
/// user's answer is `false` whatever it matches.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$J2esrF8lrtQ9X9rTVFV2tw$lQtf9qND74jrmZQ8OUtMdzad4pJsSFLaOqm+nNIhtLo";

/// Hashes and verifies passwords; cheap to clone, shared by all handlers.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    /// A hasher allowing `max_concurrent` hashes at once (each holds 19 MiB).
    pub fn new(max_concurrent: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of `password`.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let clear = zeroizing(password.expose());
        self.blocking(move || {
            argon2()
                .hash_password(clear.expose_secret().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| HashError(e.to_string()))
        })
        .await?
    }

    /// Whether `candidate` matches `phc`. With `phc = None` (no such user) it
    /// does the same work against a decoy and answers `false`.
    pub async fn verify(&self, candidate: &str, phc: Option<&str>) -> Result<bool, HashError> {
        let clear = zeroizing(candidate);
        let (hash, real) = match phc {
            Some(h) => (h.to_owned(), true),
            None => (DECOY.to_owned(), false),
        };
        let matched = self
            .blocking(move || {
                argon2()
                    .verify_password(clear.expose_secret().as_bytes(), hash.as_str())
                    .is_ok()
            })
            .await?;
        Ok(real && matched)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashError(e.to_string()))
    }
}

fn argon2() -> Argon2<'static> {
    // These constants are valid Argon2 parameters.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A clear-text copy that is wiped when the blocking task drops it.
fn zeroizing(s: &str) -> secrecy::SecretString {
    secrecy::SecretString::from(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hasher = PasswordHasher::new(2);
        let pw = Password::parse("correct horse", None).unwrap();
        let phc = hasher.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher.verify("correct horse", Some(&phc)).await.unwrap());
        assert!(!hasher.verify("wrong horse", Some(&phc)).await.unwrap());
        assert!(!hasher.verify("correct horse", None).await.unwrap());
        assert!(!hasher.verify("x", Some("not a phc string")).await.unwrap());
        // The decoy is a well-formed hash with the same cost as real ones.
        assert!(DECOY.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(argon2::password_hash::phc::PasswordHash::new(DECOY).is_ok());
    }
}
