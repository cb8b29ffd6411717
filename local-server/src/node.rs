//! [`Node`]: one server process's parts — store, bus, hub, context — and
//! its background tasks (bus subscription, lease renewal, sweep).

use std::sync::Arc;
use std::time::Duration;

use rollcall::config::Config;
use rollcall::domain::Timestamp;
use rollcall::store::Store;
use rollcall::store::dynamodb::DynamoStore;
use rollcall::store::memory::MemoryStore;
use rollcall::store::redis::RedisStore;
use rollcall::{AppContext, handlers};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bus::{self, Bus, InProcessBus, RedisBus};
use crate::hub::{Hub, close};
use crate::pusher::LocalPusher;

/// Which store (and with it, which bus) a node runs on.
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
    DynamoDb {
        /// Create the tables first if they do not exist (emulators, trials).
        create_tables: bool,
    },
    /// A store built by the caller, with the in-process bus: one process.
    InProcess(Arc<dyn Store>),
}

/// Building a node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store could not be reached.
    #[error("cannot open the store: {0}")]
    Store(#[from] rollcall::store::StoreError),
    /// The Redis event bus could not be reached.
    #[error("cannot reach Redis for the event bus: {0}")]
    Bus(#[from] redis::RedisError),
}

/// A running node: the context handlers use plus this process's hub.
pub struct Node {
    /// Store + pusher + config.
    pub ctx: AppContext,
    /// This process's sockets.
    pub hub: Arc<Hub>,
    /// Every socket's task, so shutdown can wait for their clean-up.
    pub sockets: TaskTracker,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Connects to the backend and starts the background tasks.
    pub async fn start(config: Config, backend: &Backend) -> Result<Self, NodeError> {
        let hub = Hub::new();
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let (store, bus): (Arc<dyn Store>, Arc<dyn Bus>) = match backend {
            Backend::Memory => (
                Arc::new(MemoryStore::new()),
                Arc::new(InProcessBus::new(hub.clone())),
            ),
            Backend::Redis { url } => {
                let store = RedisStore::connect(url, &config.redis_prefix).await?;
                let channel = format!("{}events", config.redis_prefix);
                let bus = RedisBus::connect(url, &channel).await?;
                tasks.push(bus::subscribe(url, &channel, hub.clone(), stop.clone()).await?);
                (Arc::new(store), Arc::new(bus))
            }
            Backend::DynamoDb { create_tables } => {
                let store = DynamoStore::from_env(config.tables.clone()).await;
                if *create_tables {
                    store.create_tables().await?;
                }
                (Arc::new(store), Arc::new(InProcessBus::new(hub.clone())))
            }
            Backend::InProcess(store) => (store.clone(), Arc::new(InProcessBus::new(hub.clone()))),
        };
        let ctx = AppContext::new(store, Arc::new(LocalPusher::new(bus)), config);
        tasks.push(tokio::spawn(renew_leases(
            ctx.clone(),
            hub.clone(),
            stop.clone(),
        )));
        tasks.push(tokio::spawn(sweep(ctx.clone(), stop.clone())));
        tasks.push(tokio::spawn(release_held_events(hub.clone(), stop.clone())));
        Ok(Self {
            ctx,
            hub,
            sockets: TaskTracker::new(),
            stop,
            tasks,
        })
    }

    /// Closes every socket, waits up to `grace` for their tasks to finish
    /// (each unregisters and announces its user offline if it was their
    /// last), then stops the background tasks.
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
/// registration vanished (swept while this process was stalled) so its
/// client reconnects and registers again.
async fn renew_leases(ctx: AppContext, hub: Arc<Hub>, stop: CancellationToken) {
    let every = ctx.config.lease / 3;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
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
/// died) and announces those users offline. Every process sweeps; the
/// store's conditional removal makes concurrent sweeps safe.
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

/// Releases presence events the hub held for a predecessor that never came.
async fn release_held_events(hub: Arc<Hub>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(crate::hub::REORDER_HOLD / 5);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => hub.flush_overdue(),
        }
    }
}
