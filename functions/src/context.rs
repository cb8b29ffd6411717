//! [`AppContext`]: what every handler needs, built once per process (or per
//! Lambda cold start) and shared.

use std::sync::Arc;

use crate::config::Config;
use crate::domain::{PresenceEvent, Timestamp, Username};
use crate::limits::RateLimiter;
use crate::limits::bucket::MessageBuckets;
use crate::limits::memory::MemoryLimiter;
use crate::presence::{LiveSource, PresenceSource, PresenceView, StoreSource};
use crate::push::{PushError, Pusher};
use crate::queue::Queues;
use crate::security::PasswordHasher;
use crate::store::Store;

/// Who tells sockets about the presence events a handler causes. Never the
/// handler itself, inside its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcing {
    /// The store's event log does: every local server process tails it,
    /// and on AWS the presence table's stream feeds the fan-out function.
    /// Handlers only write the store.
    ByLog,
    /// The handler hands the event to the push queue (the Lambda functions
    /// on a store whose log no AWS service reads: Redis).
    ByQueue,
}

/// The store, the pusher, the configuration, the password hasher, the rate
/// limiter, where presence is read from, and the queues.
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
    /// Rate limits' counts; in this process unless [`AppContext::with_limiter`]
    /// set a shared one (Redis, DynamoDB).
    pub limiter: Arc<dyn RateLimiter>,
    /// Who is online, for pages and snapshots.
    pub presence: Arc<dyn PresenceSource>,
    /// Who announces events.
    pub announcing: Announcing,
    /// The push and settle queues (the Lambda functions); `None` in a
    /// process that fans out and settles by itself (the local server).
    pub queues: Option<Arc<dyn Queues>>,
    /// Client messages' allowance per connection whose messages arrive as
    /// separate invocations (the cloud's `$default`); the local server
    /// keeps a bucket in each socket's task instead.
    pub messages: Arc<MessageBuckets>,
}

/// Announcing through a queue, without one.
#[derive(Debug, thiserror::Error)]
#[error("this context announces through the push queue but has none")]
struct NoQueue;

impl AppContext {
    /// A context reading presence from the store by key, announcing by the
    /// store's log, with no queues.
    pub fn new(store: Arc<dyn Store>, pusher: Arc<dyn Pusher>, config: Config) -> Self {
        let hasher = PasswordHasher::with_queue(config.hash_concurrency, config.hash_queue);
        Self {
            presence: Arc::new(StoreSource(store.clone())),
            store,
            pusher,
            config: Arc::new(config),
            hasher,
            limiter: Arc::new(MemoryLimiter::new()),
            announcing: Announcing::ByLog,
            queues: None,
            messages: Arc::new(MessageBuckets::default()),
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

    /// This context handing work to `queues`: grace periods to settle, and,
    /// with [`Announcing::ByQueue`], the events handlers cause.
    pub fn with_queues(mut self, queues: Arc<dyn Queues>, announcing: Announcing) -> Self {
        self.queues = Some(queues);
        self.announcing = announcing;
        self
    }

    /// This context with `limiter` for its rate limits.
    pub fn with_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = limiter;
        self
    }

    /// Announces `event` to every connection, unless the store's log does
    /// ([`Announcing::ByLog`]): then nothing is to be done here.
    pub async fn announce(&self, event: &PresenceEvent) -> Result<(), PushError> {
        match (self.announcing, &self.queues) {
            (Announcing::ByLog, _) => Ok(()),
            (Announcing::ByQueue, Some(q)) => q.fan_out(event, self.store.group_shards()).await,
            (Announcing::ByQueue, None) => Err(PushError::new(NoQueue)),
        }
    }

    /// A grace period started for `user`, due at `due`: asks the settle
    /// queue to end it then (the Lambda functions). Without queues the
    /// process settles grace periods by itself (the local server's loop).
    pub async fn grace_started(&self, user: &Username, due: Timestamp) -> Result<(), PushError> {
        match &self.queues {
            Some(q) => q.settle_at(user, due).await,
            None => Ok(()),
        }
    }
}
