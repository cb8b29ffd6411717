//! [`AppContext`]: what every handler needs, built once per process (or per
//! Lambda cold start) and shared.

use std::sync::Arc;

use crate::config::Config;
use crate::limits::RateLimiter;
use crate::limits::memory::MemoryLimiter;
use crate::push::Pusher;
use crate::security::PasswordHasher;
use crate::store::Store;

/// The store, the pusher, the configuration, the password hasher and the
/// rate limiter.
#[derive(Clone)]
pub struct AppContext {
    /// Where state lives.
    pub store: Arc<dyn Store>,
    /// How events reach sockets.
    pub pusher: Arc<dyn Pusher>,
    /// Settings.
    pub config: Arc<Config>,
    /// Argon2id, on the blocking pool.
    pub hasher: PasswordHasher,
    /// Rate limits' counts; in this process unless [`AppContext::with_limiter`]
    /// set a shared one (Redis, DynamoDB).
    pub limiter: Arc<dyn RateLimiter>,
}

impl AppContext {
    /// Assembles a context.
    pub fn new(store: Arc<dyn Store>, pusher: Arc<dyn Pusher>, config: Config) -> Self {
        let hasher = PasswordHasher::with_queue(config.hash_concurrency, config.hash_queue);
        Self {
            store,
            pusher,
            config: Arc::new(config),
            hasher,
            limiter: Arc::new(MemoryLimiter::new()),
        }
    }

    /// The same context counting rate limits in `limiter`.
    #[must_use]
    pub fn with_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = limiter;
        self
    }
}
