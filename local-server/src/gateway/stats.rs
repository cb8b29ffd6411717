//! [`GatewayStats`]: what the stand-in did, counted as AWS bills it, and
//! [`current_function`]: which function the running task serves.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a stand-in did, counted (see [`serve_with_stats`]): Lambda
/// invocations per function, `@connections` calls and connection time — the
/// quantities API Gateway and Lambda bill. Clones share the same counters;
/// only the stand-in adds to them, everyone else reads [`snapshot`](Self::snapshot)s.
#[derive(Debug, Clone, Default)]
pub struct GatewayStats(Arc<Counters>);

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) ws_connect: AtomicU64,
    pub(super) ws_disconnect: AtomicU64,
    pub(super) ws_default: AtomicU64,
    pub(super) http: AtomicU64,
    pub(super) sweep: AtomicU64,
    pub(super) fanout: AtomicU64,
    pub(super) push: AtomicU64,
    pub(super) settle: AtomicU64,
    pub(super) posts: AtomicU64,
    pub(super) post_bytes: AtomicU64,
    pub(super) posts_gone: AtomicU64,
    pub(super) deletes: AtomicU64,
    pub(super) deletes_gone: AtomicU64,
    pub(super) gets: AtomicU64,
    pub(super) connection_ms: AtomicU64,
}

/// One reading of a [`GatewayStats`]; [`since`](Self::since) gives the
/// difference between two readings. Invocations count once the function
/// has returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// `$connect` invocations (`ws_connect`), refused upgrades included.
    pub ws_connect: u64,
    /// `$disconnect` invocations (`ws_disconnect`); dropped ones are not.
    pub ws_disconnect: u64,
    /// `$default` invocations (`ws_default`): one per client text message.
    pub ws_default: u64,
    /// HTTP API requests, each one invocation of an `http_*` function.
    pub http: u64,
    /// Scheduled sweeps (`sweep` invocations) the stand-in made.
    pub sweep: u64,
    /// `fanout` invocations (batches of the presence table's stream).
    pub fanout: u64,
    /// `push` invocations (batches of the push queue).
    pub push: u64,
    /// `settle` invocations (batches of the settle queue).
    pub settle: u64,
    /// `PostToConnection` calls delivered to an open connection (messages
    /// to clients).
    pub posts: u64,
    /// Bytes of those messages.
    pub post_bytes: u64,
    /// `PostToConnection` calls answered 410 Gone (not open).
    pub posts_gone: u64,
    /// `DeleteConnection` calls on an open connection.
    pub deletes: u64,
    /// `DeleteConnection` calls answered 410 Gone (not open).
    pub deletes_gone: u64,
    /// `GetConnection` calls, whatever the answer.
    pub gets: u64,
    /// Milliseconds connections stayed open, summed over closed connections.
    pub connection_ms: u64,
}

impl StatsSnapshot {
    /// What happened between `earlier` and this reading.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            ws_connect: self.ws_connect.saturating_sub(earlier.ws_connect),
            ws_disconnect: self.ws_disconnect.saturating_sub(earlier.ws_disconnect),
            ws_default: self.ws_default.saturating_sub(earlier.ws_default),
            http: self.http.saturating_sub(earlier.http),
            sweep: self.sweep.saturating_sub(earlier.sweep),
            fanout: self.fanout.saturating_sub(earlier.fanout),
            push: self.push.saturating_sub(earlier.push),
            settle: self.settle.saturating_sub(earlier.settle),
            posts: self.posts.saturating_sub(earlier.posts),
            post_bytes: self.post_bytes.saturating_sub(earlier.post_bytes),
            posts_gone: self.posts_gone.saturating_sub(earlier.posts_gone),
            deletes: self.deletes.saturating_sub(earlier.deletes),
            deletes_gone: self.deletes_gone.saturating_sub(earlier.deletes_gone),
            gets: self.gets.saturating_sub(earlier.gets),
            connection_ms: self.connection_ms.saturating_sub(earlier.connection_ms),
        }
    }
}

impl GatewayStats {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let c = &self.0;
        let get = |n: &AtomicU64| n.load(Ordering::SeqCst);
        StatsSnapshot {
            ws_connect: get(&c.ws_connect),
            ws_disconnect: get(&c.ws_disconnect),
            ws_default: get(&c.ws_default),
            http: get(&c.http),
            sweep: get(&c.sweep),
            fanout: get(&c.fanout),
            push: get(&c.push),
            settle: get(&c.settle),
            posts: get(&c.posts),
            post_bytes: get(&c.post_bytes),
            posts_gone: get(&c.posts_gone),
            deletes: get(&c.deletes),
            deletes_gone: get(&c.deletes_gone),
            gets: get(&c.gets),
            connection_ms: get(&c.connection_ms),
        }
    }

    pub(super) fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64, n: u64) {
        counter(&self.0).fetch_add(n, Ordering::SeqCst);
    }
}

tokio::task_local! {
    pub(super) static FUNCTION: &'static str;
}

/// The function whose invocation the current task is running inside a
/// stand-in: `ws_connect`, `ws_disconnect`, `ws_default`, `sweep`,
/// `fanout`, `push`, `settle`, or
/// `http` (any `http_*` function: which one depends on the route); `None`
/// outside an invocation. SDK interceptors run in the calling task, so a
/// test's interceptor can tell which function made each call.
pub fn current_function() -> Option<&'static str> {
    FUNCTION.try_with(|f| *f).ok()
}
