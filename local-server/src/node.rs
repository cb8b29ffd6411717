//! [`Node`]: one server process's parts — store, control bus, hub, feed,
//! context — and its background tasks (log feed, bus subscription, lease
//! renewal, grace settling, sweep).

use std::sync::Arc;
use std::time::Duration;

use rollcall::config::{Config, StoreChoice};
use rollcall::domain::Timestamp;
use rollcall::store::Store;
use rollcall::{AppContext, handlers};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bus::{self, Bus, InProcessBus, RedisBus};
use crate::feed::Feed;
use crate::hub::{Hub, close};
use crate::metrics::Metrics;
use crate::metrics::limiter::CountingLimiter;
use crate::metrics::store::CountingStore;
use crate::pusher::LocalPusher;

/// Which store (and with it, which control bus) a node runs on.
#[derive(Clone)]
pub enum Backend {
    /// In-process memory and bus: a single process.
    Memory,
    /// Redis store and Redis pub/sub bus: any number of processes.
    Redis {
        /// `redis://host:port[/db]`.
        url: String,
    },
    /// DynamoDB store (tables from the config, endpoint and credentials from
    /// the AWS environment) with the in-process bus: one process.
    DynamoDb,
    /// A store built by the caller, with the in-process bus: one process.
    InProcess(Arc<dyn Store>),
}

/// Building a node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store could not be reached.
    #[error("cannot open the store: {0}")]
    Store(#[from] rollcall::store::StoreError),
    /// The Redis control bus could not be reached.
    #[error("cannot reach Redis for the control bus: {0}")]
    Bus(#[from] redis::RedisError),
}

/// A running node: the context handlers use plus this process's hub.
pub struct Node {
    /// Store + pusher + config + presence view.
    pub ctx: AppContext,
    /// This process's sockets.
    pub hub: Arc<Hub>,
    /// The log follower and presence view.
    pub feed: Arc<Feed>,
    /// What `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// Every socket's task, so shutdown can wait for their clean-up.
    pub sockets: TaskTracker,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Connects to the backend, loads the presence view and starts the
    /// background tasks.
    pub async fn start(config: Config, backend: &Backend) -> Result<Self, NodeError> {
        let metrics = Arc::new(Metrics::new());
        let hub = Hub::counting(metrics.frames_queued.clone());
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let in_process = || -> Arc<dyn Bus> { Arc::new(InProcessBus::new(hub.clone())) };
        let (store, bus): (Arc<dyn Store>, Arc<dyn Bus>) = match backend {
            Backend::Memory => (
                rollcall::store::open(&StoreChoice::Memory, &config).await?,
                in_process(),
            ),
            Backend::Redis { url } => {
                let store =
                    rollcall::store::open(&StoreChoice::Redis(url.clone()), &config).await?;
                let channel = format!("{}control", config.redis_prefix);
                let bus = RedisBus::connect(url, &channel).await?;
                let lost = metrics.bus_reconnects.clone();
                tasks.push(bus::subscribe(url, &channel, hub.clone(), lost, stop.clone()).await?);
                (store, Arc::new(bus))
            }
            Backend::DynamoDb => (
                rollcall::store::open(&StoreChoice::DynamoDb, &config).await?,
                in_process(),
            ),
            Backend::InProcess(store) => (store.clone(), in_process()),
        };
        let choice = match backend {
            Backend::Redis { url } => StoreChoice::Redis(url.clone()),
            Backend::DynamoDb => StoreChoice::DynamoDb,
            Backend::Memory | Backend::InProcess(_) => StoreChoice::Memory,
        };
        // Rate limits count next to the store: shared on Redis and DynamoDB.
        let limiter = rollcall::limits::open(&choice, &config)
            .await
            .map_err(|e| NodeError::Store(rollcall::store::StoreError::backend(e)))?;
        // Counted here, so the shared handlers carry no metrics code.
        let limiter = Arc::new(CountingLimiter::new(
            limiter,
            metrics.rate_limited.clone(),
            metrics.limiter_errors.clone(),
        ));
        let store: Arc<dyn Store> =
            Arc::new(CountingStore::new(store, metrics.store_errors.clone()));
        let (feed, follower) =
            Feed::start(store.clone(), hub.clone(), metrics.clone(), stop.clone()).await?;
        tasks.push(follower);
        let ctx = AppContext::new(store, Arc::new(LocalPusher::new(bus)), config)
            .with_view(feed.view.clone())
            .with_limiter(limiter);
        tasks.push(tokio::spawn(renew_leases(
            ctx.clone(),
            hub.clone(),
            feed.clone(),
            stop.clone(),
        )));
        tasks.push(tokio::spawn(sweep(ctx.clone(), stop.clone())));
        if !ctx.config.offline_grace.is_zero() {
            tasks.push(tokio::spawn(settle(ctx.clone(), stop.clone())));
        }
        Ok(Self {
            ctx,
            hub,
            feed,
            metrics,
            sockets: TaskTracker::new(),
            stop,
            tasks,
        })
    }

    /// Closes every socket, waits up to `grace` for their tasks to finish
    /// (each unregisters; its user goes offline after the offline grace
    /// unless they reconnect, e.g. to another process), then stops the
    /// background tasks.
    pub async fn shutdown(self, grace: Duration) {
        self.hub.close_all();
        self.sockets.close();
        if tokio::time::timeout(grace, self.sockets.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.sockets.len(),
                "sockets still closing at shutdown"
            );
        }
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Keeps this process's connections registered: renews all their leases in
/// one batched call every third of a lease, and closes any socket whose
/// registration vanished (swept while this process was stalled, logged out
/// while the control bus was down, lost by a store that restarted from an
/// older file) so its client reconnects and registers again, or finds its
/// session gone. After the feed reloaded its view (a gap: possibly such a
/// restart) it renews at once, so lost registrations are found within a
/// round trip rather than a third of a lease.
async fn renew_leases(ctx: AppContext, hub: Arc<Hub>, feed: Arc<Feed>, stop: CancellationToken) {
    let every = ctx.config.lease / 3;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
            () = feed.reloaded() => {}
        }
        let ids = hub.ids();
        if ids.is_empty() {
            continue;
        }
        let until = Timestamp::now().plus(ctx.config.lease);
        match ctx.store.renew_leases(&ids, until).await {
            Ok(missing) if !missing.is_empty() => {
                tracing::warn!(
                    count = missing.len(),
                    "closing sockets whose registration expired"
                );
                hub.close(&missing, close::EXPIRED);
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "lease renewal failed"),
        }
    }
}

/// Periodically removes connections whose lease ran out (their process
/// died) and takes their users offline. Every process sweeps; the store's
/// conditional removal makes concurrent sweeps safe.
async fn sweep(ctx: AppContext, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(ctx.config.sweep_interval) => {}
        }
        if let Err(e) = handlers::sweep::sweep(&ctx, Timestamp::now()).await {
            tracing::error!(error = %e, "sweep failed");
        }
    }
}

/// How often grace deadlines are checked: a quarter of the grace, between
/// 50 ms and 1 s, so a user goes offline at most that long after theirs.
pub fn settle_period(grace: Duration) -> Duration {
    (grace / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// Takes offline the users whose grace period ended with no connection
/// back. Every process settles; the store's check makes that safe.
async fn settle(ctx: AppContext, stop: CancellationToken) {
    let every = settle_period(ctx.config.offline_grace);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(e) = handlers::sweep::settle(&ctx, Timestamp::now()).await {
            tracing::error!(error = %e, "settling grace periods failed");
        }
    }
}
