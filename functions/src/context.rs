//! [`AppContext`]: what every handler needs, built once per process (or per
//! Lambda cold start) and shared.

use std::sync::Arc;

use crate::config::Config;
use crate::domain::{ConnectionId, PresenceEvent};
use crate::limits::RateLimiter;
use crate::limits::memory::MemoryLimiter;
use crate::presence::{LiveSource, PresenceSource, PresenceView, StoreSource};
use crate::push::{PushError, Pusher};
use crate::security::PasswordHasher;
use crate::store::Store;

/// Who tells sockets about the presence events a handler causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcing {
    /// Every process tails the store's event log and fans each entry out to
    /// its own sockets (the local server): handlers only write the store.
    ByLog,
    /// The handler that caused an event broadcasts it through the pusher
    /// (the Lambda functions).
    ByHandler,
}

/// The store, the pusher, the configuration, the password hasher, the rate
/// limiter and where presence is read from.
#[derive(Clone)]
pub struct AppContext {
    /// Where state lives.
    pub store: Arc<dyn Store>,
    /// How messages reach sockets.
    pub pusher: Arc<dyn Pusher>,
    /// Settings.
    pub config: Arc<Config>,
    /// Argon2id, on the blocking pool.
    pub hasher: PasswordHasher,
    /// Who is online, for pages and snapshots.
    pub presence: Arc<dyn PresenceSource>,
    /// Who announces events.
    pub announcing: Announcing,
    /// Rate limits' counts; in this process unless [`AppContext::with_limiter`]
    /// set a shared one (Redis, DynamoDB).
    pub limiter: Arc<dyn RateLimiter>,
}

impl AppContext {
    /// A context whose handlers broadcast their own events and read
    /// presence from the store (a process without a view).
    pub fn new(store: Arc<dyn Store>, pusher: Arc<dyn Pusher>, config: Config) -> Self {
        let hasher = PasswordHasher::with_queue(config.hash_concurrency, config.hash_queue);
        Self {
            presence: Arc::new(StoreSource(store.clone())),
            store,
            pusher,
            config: Arc::new(config),
            hasher,
            limiter: Arc::new(MemoryLimiter::new()),
            announcing: Announcing::ByHandler,
        }
    }

    /// This context reading presence from `view`, which a log follower
    /// keeps current and which fans events out ([`Announcing::ByLog`]).
    pub fn with_view(mut self, view: Arc<PresenceView>) -> Self {
        self.presence = Arc::new(LiveSource {
            view,
            store: self.store.clone(),
        });
        self.announcing = Announcing::ByLog;
        self
    }

    /// Announces `event` to every connection but `except`, unless the event
    /// log does that ([`Announcing::ByLog`]).
    pub async fn announce(
        &self,
        event: &PresenceEvent,
        except: Option<&ConnectionId>,
    ) -> Result<(), PushError> {
        match self.announcing {
            Announcing::ByLog => Ok(()),
            Announcing::ByHandler => self.pusher.broadcast(event, except).await,
        }
    }

    /// The same context counting rate limits in `limiter`.
    #[must_use]
    pub fn with_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = limiter;
        self
    }
}
