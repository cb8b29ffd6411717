//! The cloud-path benchmark (`rollcall-bench cloud`): the Lambda functions
//! behind the API Gateway stand-in, their fan-out behind the stream and the
//! queues run by the stand-in's event source mappings on moto, on DynamoDB
//! (moto) or on Redis.
//!
//! For each store and each number of watchers W it opens W watching
//! sockets (tabs of one user), then, `rounds` times, a mover's first tab
//! opens and closes: the `$connect`'s own time (until the upgrade is
//! answered: nothing waits for a fan-out) and the time until the last
//! watcher has the mover's online event are recorded. Then `online` users
//! are registered online straight in the store and one socket asks for its
//! snapshot: how many messages it gets, the largest, and that it lists them
//! all. Sessions are made in the store directly (no Argon2 per watcher).
//! moto serves one request at a time (see `moto.rs`), so the figures are
//! the emulator's, not AWS's: they show the shape (what waits for what), not
//! production latencies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt, stream};
use rollcall::domain::{ConnectionId, SessionToken, Timestamp, Username};
use rollcall::store::dynamodb::DynamoStore;
use rollcall::store::{ConnectionRecord, SessionRecord, Store, UserRecord};
use rollcall_local_server::gateway::GatewayOptions;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::quantile;
use crate::gateway::{TestGateway, spawn_gateway, spawn_gateway_on_dynamodb};

/// Which store the functions run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudStore {
    /// DynamoDB on moto: the stream feeds `fanout`.
    DynamoDb,
    /// Redis: the handlers queue their events.
    Redis,
}

impl CloudStore {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::DynamoDb => "dynamodb (moto)",
            Self::Redis => "redis",
        }
    }
}

/// What one run gave.
#[derive(Debug, Clone)]
pub struct CloudMeasurement {
    /// The store.
    pub store: CloudStore,
    /// Watching sockets.
    pub watchers: usize,
    /// `$connect` time, p50 and p99.
    pub connect: (Duration, Duration),
    /// Cause to the last watcher having the event, p50 and p99.
    pub event: (Duration, Duration),
    /// Online users listed in the snapshot, messages, largest message bytes.
    pub snapshot: (usize, usize, usize),
}

/// The stand-in's settings: no grace (each round's close is announced at
/// once), no cap on one user's sockets (the watchers are tabs of one user).
const SETTINGS: [(&str, &str); 2] = [
    ("ROLLCALL_OFFLINE_GRACE_SECS", "0"),
    ("ROLLCALL_WS_MAX_PER_USER", "off"),
];

/// The store-side setup of a run: the gateway and a way to make sessions.
async fn gateway(which: CloudStore) -> (TestGateway, Arc<dyn Store>, Option<DynamoStore>) {
    let opts = GatewayOptions {
        sweep_every: None,
        ..GatewayOptions::default()
    };
    let grace = SETTINGS;
    match which {
        CloudStore::DynamoDb => {
            let store = crate::moto::fresh_store().await;
            let shared: Arc<dyn Store> = Arc::new(store.clone());
            let seeder = store.clone();
            (
                spawn_gateway_on_dynamodb(store, opts, &grace).await,
                shared,
                Some(seeder),
            )
        }
        CloudStore::Redis => {
            let store: Arc<dyn Store> = Arc::new(
                rollcall::store::redis::RedisStore::connect(
                    crate::redis_server::redis_url(),
                    &crate::redis_server::unique_prefix(),
                )
                .await
                .expect("redis"),
            );
            (
                spawn_gateway(store.clone(), opts, &grace).await,
                store,
                None,
            )
        }
    }
}

/// A user with a session, made in the store; returns the session token.
async fn user(store: &dyn Store, name: &str) -> SessionToken {
    let username = Username::parse(name).expect("name");
    store
        .create_user(&UserRecord {
            username: username.clone(),
            password_hash: "seeded".into(),
            created_at: Timestamp::now(),
        })
        .await
        .expect("user");
    let token = SessionToken::generate();
    store
        .create_session(&SessionRecord {
            key: token.key(),
            username,
            expires_at: Timestamp::now().plus(Duration::from_secs(3600)),
        })
        .await
        .expect("session");
    token
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a socket as the cloud page does; returns it and how long the
/// upgrade (the `$connect`) took.
async fn open(gw: &TestGateway, token: &SessionToken) -> (Ws, Duration) {
    let url = format!("{}?token={}", gw.ws_url, token.expose());
    let mut req = url.into_client_request().expect("url");
    req.headers_mut().insert(
        http::header::ORIGIN,
        http::HeaderValue::from_str(&gw.base).expect("origin"),
    );
    let t = Instant::now();
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    (ws, t.elapsed())
}

/// Measures one store with `watchers` watching sockets.
pub async fn measure(
    which: CloudStore,
    watchers: usize,
    rounds: usize,
    online: usize,
) -> CloudMeasurement {
    let (gw, store, dynamo) = gateway(which).await;
    let w = user(&*store, &crate::unique_name("watcher")).await;
    let m = user(&*store, &crate::unique_name("mover")).await;
    let opened: Vec<Ws> = stream::iter(0..watchers)
        .map(|_| async { open(&gw, &w).await.0 })
        .buffer_unordered(32)
        .collect()
        .await;
    let (arrived_tx, mut arrived_rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, bool)>();
    let readers: Vec<_> = opened
        .into_iter()
        .map(|mut ws| {
            let tx = arrived_tx.clone();
            tokio::spawn(async move {
                while let Some(Ok(msg)) = ws.next().await {
                    if let Message::Text(t) = msg
                        && t.contains("mover")
                        && t.contains(r#""is_logged_in""#)
                    {
                        let online = t.contains(r#""is_logged_in":true"#);
                        let _ = tx.send((Instant::now(), online));
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (mut connects, mut events) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        while arrived_rx.try_recv().is_ok() {}
        let t = Instant::now();
        let (mut tab, took) = open(&gw, &m).await;
        connects.push(took);
        events.push(
            all_have(&mut arrived_rx, watchers, true)
                .await
                .duration_since(t),
        );
        let _ = tab.close(None).await;
        // The next `$connect` starts once the offline event has reached
        // every watcher too: each round measures a `$connect` with no
        // fan-out in flight (on AWS a fan-out runs beside it; on moto,
        // which serves one request at a time, it would queue behind one).
        all_have(&mut arrived_rx, watchers, false).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for r in readers {
        r.abort();
    }
    // The watchers' closes (W `$disconnect`s and their fan-outs) finish
    // before the next phase: on moto, which serves one request at a time,
    // they would otherwise run under the snapshot and the next store's run.
    until_unregistered(&*store).await;
    // The snapshot on a stand-in that reads no stream: seeding thousands
    // of users online through the store would otherwise fan out each of
    // them (to the watchers above, and on moto, one request at a time).
    drop(gw);
    let quiet = spawn_gateway(
        store.clone(),
        GatewayOptions {
            sweep_every: None,
            ..GatewayOptions::default()
        },
        &SETTINGS,
    )
    .await;
    let snapshot = snapshot_of(&quiet, &*store, dynamo.as_ref(), online).await;
    CloudMeasurement {
        store: which,
        watchers,
        connect: (quantile(connects.clone(), 0.5), quantile(connects, 0.99)),
        event: (quantile(events.clone(), 0.5), quantile(events, 0.99)),
        snapshot,
    }
}

/// Waits (at most 5 minutes) until the store lists no connection.
async fn until_unregistered(store: &dyn Store) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        match store.group_connections(None, 1).await {
            Ok(page) if page.items.is_empty() => return,
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    eprintln!("rollcall-bench: connections still registered after 5 minutes; going on");
}

/// Waits until `watchers` sockets have the mover's event saying `online`;
/// returns when the last one had it.
async fn all_have(
    arrived: &mut tokio::sync::mpsc::UnboundedReceiver<(Instant, bool)>,
    watchers: usize,
    online: bool,
) -> Instant {
    let mut last = Instant::now();
    let mut have = 0;
    while have < watchers {
        match tokio::time::timeout(Duration::from_secs(30), arrived.recv()).await {
            Ok(Some((at, was))) if was == online => {
                last = at;
                have += 1;
            }
            Ok(Some(_)) => {}
            _ => panic!("a watcher never got the event"),
        }
    }
    last
}

/// Registers `online` users online in the store (on DynamoDB straight
/// into the presence table: moto takes seconds per transaction once it
/// holds thousands of items), then asks a new socket for its snapshot:
/// (users listed, messages, largest message).
async fn snapshot_of(
    gw: &TestGateway,
    store: &dyn Store,
    dynamo: Option<&DynamoStore>,
    online: usize,
) -> (usize, usize, usize) {
    let prefix = crate::unique_name("on");
    if let Some(d) = dynamo {
        let names: Vec<String> = (0..online).map(|i| format!("{prefix}.{i:05}")).collect();
        crate::moto::seed_online(d.client(), &d.tables().presence, &names).await;
    }
    let seeded = if dynamo.is_some() { 0 } else { online };
    let made: Vec<()> = stream::iter(0..seeded)
        .map(|i| {
            let name = format!("{prefix}.{i:05}");
            async move {
                let token = user(store, &name).await;
                store
                    .add_connection(
                        &ConnectionRecord {
                            id: ConnectionId::generate(),
                            username: Username::parse(&name).expect("name"),
                            session: token.key(),
                            lease_until: Timestamp::now().plus(Duration::from_secs(3600)),
                            session_expires_at: Timestamp::now().plus(Duration::from_secs(3600)),
                        },
                        None,
                    )
                    .await
                    .expect("online");
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    drop(made);
    let asker = user(store, &crate::unique_name("asker")).await;
    let (mut ws, _) = open(gw, &asker).await;
    ws.send(Message::text(r#"{"type":"snapshot"}"#))
        .await
        .expect("ask");
    let (mut listed, mut messages, mut largest) = (0, 0, 0);
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("the snapshot arrives");
        let Some(Ok(Message::Text(t))) = msg else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
        if v["type"] != "snapshot" {
            continue;
        }
        messages += 1;
        largest = largest.max(t.len());
        listed += v["users"].as_array().map_or(0, Vec::len);
        if v["more"] != true {
            return (listed, messages, largest);
        }
    }
}

/// The report: a Markdown table, one row per run.
pub fn table(rows: &[CloudMeasurement]) -> String {
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    let mut out = String::from(
        "| store | watchers | `$connect` p50 / p99 ms | event to the last watcher p50 / p99 ms | snapshot: online listed | messages | largest bytes |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for m in rows {
        out.push_str(&format!(
            "| {} | {} | {} / {} | {} / {} | {} | {} | {} |\n",
            m.store.name(),
            m.watchers,
            ms(m.connect.0),
            ms(m.connect.1),
            ms(m.event.0),
            ms(m.event.1),
            m.snapshot.0,
            m.snapshot.1,
            m.snapshot.2,
        ));
    }
    out
}
