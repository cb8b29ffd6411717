//! Argon2id password hashing, off the async workers, with bounded work.
//!
//! Parameters are OWASP's first recommendation (m = 19 MiB, t = 2, p = 1).
//! Each hash takes tens of milliseconds of CPU and 19 MiB of memory, so:
//!
//! * it runs on tokio's blocking pool, at most `concurrency` at once. The
//!   permit is **moved into the blocking task**: a client that leaves (its
//!   request future dropped) does not free a slot while its hash still runs;
//! * at most `queue` more requests wait for a permit; beyond that a request
//!   fails at once with [`HashError::Busy`] (503 with `Retry-After`) instead
//!   of piling up;
//! * the working memory comes from a fixed pool of reusable blocks
//!   ([`pool`]), one per permit, so RSS does not grow per hash.

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret as _;
use tokio::sync::Semaphore;

use crate::domain::Password;

mod pool;

use pool::MemoryPool;

/// What a busy hasher tells clients to wait before retrying.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Hashing could not be done.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every permit is taken and the wait queue is full; try again after
    /// the given time (503).
    #[error("password hashing is saturated; retry after {}s", retry_after.as_secs())]
    Busy {
        /// How long the client should wait.
        retry_after: Duration,
    },
    /// Hashing failed for a reason that is not the password's fault (500).
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// A real Argon2id hash (same parameters) of a random password nobody
/// kept, verified against when a user does not exist so that unknown names
/// take as long as wrong passwords. A constant, so a cold Lambda does not
/// spend a hash on making one; it can never log anyone in, since an unknown
/// user's answer is `false` whatever it matches.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$J2esrF8lrtQ9X9rTVFV2tw$lQtf9qND74jrmZQ8OUtMdzad4pJsSFLaOqm+nNIhtLo";

/// Hashes and verifies passwords; cheap to clone, shared by all handlers.
#[derive(Clone)]
pub struct PasswordHasher {
    /// One per hash allowed to run; held by the blocking task.
    permits: Arc<Semaphore>,
    /// One per request allowed in the hasher at all (running or waiting).
    admission: Arc<Semaphore>,
    memory: Arc<MemoryPool>,
    /// Permits `admission` was made with.
    capacity: usize,
    /// Permits `permits` was made with.
    concurrency: usize,
}

impl PasswordHasher {
    /// A hasher allowing `concurrency` hashes at once (each holds 19 MiB)
    /// and up to four times as many requests waiting.
    pub fn new(concurrency: usize) -> Self {
        Self::with_queue(concurrency, concurrency.saturating_mul(4))
    }

    /// A hasher allowing `concurrency` hashes at once and `queue` requests
    /// waiting for one; more are refused with [`HashError::Busy`].
    pub fn with_queue(concurrency: usize, queue: usize) -> Self {
        let concurrency = concurrency.max(1);
        let capacity = concurrency.saturating_add(queue);
        Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            admission: Arc::new(Semaphore::new(capacity)),
            memory: Arc::new(MemoryPool::new()),
            capacity,
            concurrency,
        }
    }

    /// Requests in the hasher now: running plus waiting.
    pub fn in_flight(&self) -> usize {
        self.capacity
            .saturating_sub(self.admission.available_permits())
    }

    /// Hashes running now (each on a blocking thread, with a memory block).
    pub fn running(&self) -> usize {
        self.concurrency
            .saturating_sub(self.permits.available_permits())
    }

    /// Requests waiting for a hashing slot now (the queue's depth).
    pub fn waiting(&self) -> usize {
        self.in_flight().saturating_sub(self.running())
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of `password`.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let clear = zeroizing(password.expose());
        self.blocking(move |memory| memory.hash(clear.expose_secret().as_bytes()))
            .await?
            .map_err(HashError::Failed)
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
            .blocking(move |memory| memory.verify(clear.expose_secret().as_bytes(), &hash))
            .await?;
        Ok(real && matched)
    }

    /// Runs `work` on the blocking pool once admitted and given a permit;
    /// both are released only when `work` ends, even if the caller left.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&MemoryPool) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let admitted = self
            .admission
            .clone()
            .try_acquire_owned()
            .map_err(|_| HashError::Busy {
                retry_after: BUSY_RETRY_AFTER,
            })?;
        // Dropped here if the caller leaves while waiting: it did no work.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let memory = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let result = work(&memory);
            drop((permit, admitted));
            result
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }
}

/// A clear-text copy that is wiped when the blocking task drops it.
fn zeroizing(s: &str) -> secrecy::SecretString {
    secrecy::SecretString::from(s.to_owned())
}

#[cfg(test)]
mod tests;
