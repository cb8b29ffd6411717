//! [`AppContext`]: what every handler needs, built once per process (or per
//! Lambda cold start) and shared.

use std::sync::Arc;

use crate::config::Config;
use crate::push::Pusher;
use crate::security::PasswordHasher;
use crate::store::Store;

/// The store, the pusher, the configuration and the password hasher.
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
}

impl AppContext {
    /// Assembles a context.
    pub fn new(store: Arc<dyn Store>, pusher: Arc<dyn Pusher>, config: Config) -> Self {
        let hasher = PasswordHasher::new(config.hash_concurrency);
        Self {
            store,
            pusher,
            config: Arc::new(config),
            hasher,
        }
    }
}
