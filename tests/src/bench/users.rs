//! The user-base benchmark (`rollcall-bench users`): does a page, a socket
//! connect and a snapshot cost more as the number of registered users
//! grows?
//!
//! For each N it seeds N users straight into a fresh Redis key prefix (and
//! sessions for the `online` first ones), starts a release `rollcall-node`
//! on it (its presence view loads them), brings `online` users online with
//! one socket each, then measures: a burst of `burst` sockets of one user,
//! at most 64 opening at a time, each until its first frame (the
//! snapshot); the page `GET /` (time, bytes uncompressed and on the wire
//! with `Accept-Encoding: gzip, br, zstd`); and `connects` more sockets of
//! one user as fast as they open, for the connect rate and idle memory per
//! socket. Upgrade failures and the server's warnings are counted.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use http::HeaderValue;
use http::header::{COOKIE, ORIGIN};
use rollcall::domain::{SessionToken, Timestamp, Username};
use rollcall::store::redis::RedisStore;
use rollcall::store::{SessionRecord, Store, UserRecord};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::quantile;
use crate::node_process::NodeProcess;
use crate::redis_server::{redis_url, unique_prefix};

/// Sockets (and store writes) in flight at once.
const AT_ONCE: usize = 64;
/// Page loads measured per size.
const PAGE_LOADS: usize = 10;
/// Sockets opened one at a time for the unloaded first-frame latency.
const PROBES: usize = 20;

/// What one size gave.
#[derive(Debug, Clone)]
pub struct UsersMeasurement {
    /// Registered users.
    pub registered: usize,
    /// Users online (one socket each) during the measurements.
    pub online: usize,
    /// Server start, presence view load included.
    pub start: Duration,
    /// The burst: sockets per second, first frame p50 and p90, its size.
    pub burst_rate: f64,
    /// First frame (snapshot) latency of the burst's sockets.
    pub first_frame: (Duration, Duration),
    /// First frame latency of sockets opened one at a time (p50, p90).
    pub first_frame_alone: (Duration, Duration),
    /// Bytes of the snapshot (all its parts).
    pub snapshot_bytes: usize,
    /// `GET /`: median time, bytes uncompressed, bytes on the wire.
    pub page: (Duration, usize, usize),
    /// `connects` sockets: opened per second, server RSS bytes per socket.
    pub connects: (usize, f64, Option<u64>),
    /// Server RSS (KiB) once loaded, before any socket.
    pub loaded_rss_kib: Option<u64>,
    /// Upgrades refused or failed.
    pub errors: usize,
    /// Warnings and errors the server logged.
    pub server_problems: usize,
}

/// Seeds, starts and measures one size.
pub async fn measure(
    node_exe: &Path,
    registered: usize,
    online: usize,
    burst: usize,
    connects: usize,
) -> UsersMeasurement {
    let prefix = unique_prefix();
    let store = Arc::new(
        RedisStore::connect(redis_url(), &prefix)
            .await
            .expect("the bench's Redis"),
    );
    let tokens = seed(&store, registered, online.max(1)).await;
    let started = Instant::now();
    let mut settings = vec![
        ("ROLLCALL_STORE", redis_url()),
        ("ROLLCALL_REDIS_PREFIX", prefix.as_str()),
    ];
    settings.extend(super::NO_RATE_LIMITS);
    let node = NodeProcess::start(node_exe, &settings).await;
    let start = started.elapsed();
    let loaded_rss_kib = node.rss_kib();
    let url = node.ws_url();
    let cookie = |t: &SessionToken| format!("sessionid={}", t.expose());

    // The online users, one socket each, held open.
    let (held, _) = open_many(&url, &node.base, tokens.iter().map(cookie).collect()).await;
    let mut errors = online.max(1) - held.len();

    // The burst: tabs of the first user.
    let me = cookie(&tokens[0]);
    let t = Instant::now();
    let (burst_sockets, firsts) = open_many(&url, &node.base, vec![me.clone(); burst]).await;
    let took = t.elapsed();
    errors += burst - burst_sockets.len();
    let burst_rate = burst_sockets.len() as f64 / took.as_secs_f64();
    let latencies: Vec<Duration> = firsts.iter().map(|(d, _)| *d).collect();
    let first_frame = (quantile(latencies.clone(), 0.5), quantile(latencies, 0.9));
    let snapshot_bytes = firsts.first().map_or(0, |(_, b)| *b);
    drop(burst_sockets);

    // One at a time: a socket's own latency, without the burst's queueing.
    let mut alone = Vec::with_capacity(PROBES);
    for _ in 0..PROBES {
        match open_one(&url, &node.base, me.clone()).await {
            Ok((_, (d, _))) => alone.push(d),
            Err(e) => {
                errors += 1;
                eprintln!("rollcall-bench: a probe failed: {e}");
            }
        }
    }
    let first_frame_alone = (quantile(alone.clone(), 0.5), quantile(alone, 0.9));

    let page = page_load(&node.base, &me).await;

    // Connect rate and idle memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = node.rss_kib();
    let t = Instant::now();
    let (many, _) = open_many(&url, &node.base, vec![me; connects]).await;
    let rate = many.len() as f64 / t.elapsed().as_secs_f64();
    errors += connects - many.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_socket = before
        .zip(node.rss_kib())
        .map(|(b, a)| a.saturating_sub(b) * 1024 / connects.max(1) as u64);
    drop(many);
    drop(held);
    UsersMeasurement {
        registered,
        online: online.max(1),
        start,
        burst_rate,
        first_frame,
        first_frame_alone,
        snapshot_bytes,
        page,
        connects: (connects, rate, per_socket),
        loaded_rss_kib,
        errors,
        server_problems: node.problems.load(std::sync::atomic::Ordering::Relaxed),
    }
}

/// Creates `registered` users (`u0000001`, …) and a session for each of the
/// first `online`; returns those sessions' tokens.
async fn seed(store: &Arc<RedisStore>, registered: usize, online: usize) -> Vec<SessionToken> {
    let t = Instant::now();
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2VlZGVkc2VlZGVk$c2VlZGVkIGJ5IHRoZSBiZW5jaCwgbm90IGEgaGFzaA";
    let name = |i: usize| Username::parse(&format!("u{i:07}")).expect("a valid name");
    stream::iter(0..registered)
        .map(|i| {
            let store = store.clone();
            async move {
                store
                    .create_user(&UserRecord {
                        username: name(i),
                        password_hash: hash.to_owned(),
                        created_at: Timestamp::now(),
                    })
                    .await
                    .expect("seed a user");
            }
        })
        .buffer_unordered(AT_ONCE)
        .collect::<()>()
        .await;
    let mut tokens = Vec::with_capacity(online);
    for i in 0..online.min(registered.max(1)) {
        let token = SessionToken::generate();
        store
            .create_session(&SessionRecord {
                key: token.key(),
                username: name(i),
                expires_at: Timestamp::now().plus(Duration::from_secs(3600)),
            })
            .await
            .expect("seed a session");
        tokens.push(token);
    }
    eprintln!(
        "rollcall-bench: seeded {registered} users and {} sessions in {:.1} s",
        tokens.len(),
        t.elapsed().as_secs_f64()
    );
    tokens
}

type Held = Vec<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;

/// Opens one socket per cookie, [`AT_ONCE`] at a time, each until its first
/// frame; returns the sockets that opened and, per socket, the time to its
/// first frame and that frame's size.
async fn open_many(
    url: &str,
    origin: &str,
    cookies: Vec<String>,
) -> (Held, Vec<(Duration, usize)>) {
    let results: Vec<_> = stream::iter(cookies)
        .map(|cookie| open_one(url, origin, cookie))
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let mut held = Vec::new();
    let mut firsts = Vec::new();
    for r in results {
        match r {
            Ok((ws, first)) => {
                held.push(ws);
                firsts.push(first);
            }
            Err(e) => eprintln!("rollcall-bench: a socket failed: {e}"),
        }
    }
    (held, firsts)
}

async fn open_one(
    url: &str,
    origin: &str,
    cookie: String,
) -> Result<
    (
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        (Duration, usize),
    ),
    String,
> {
    let t = Instant::now();
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    let h = req.headers_mut();
    h.insert(
        COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| e.to_string())?,
    );
    h.insert(
        ORIGIN,
        HeaderValue::from_str(origin).map_err(|e| e.to_string())?,
    );
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true)
        .await
        .map_err(|e| e.to_string())?;
    // The first frame's time; the whole snapshot's size (all its parts).
    let mut first = None;
    let mut bytes = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let at = *first.get_or_insert_with(|| t.elapsed());
                bytes += text.len();
                if !text.contains(r#""more":true"#) {
                    return Ok((ws, (at, bytes)));
                }
            }
            Ok(Some(Ok(_))) => {}
            other => return Err(format!("no first frame: {other:?}")),
        }
    }
}

/// `GET /` [`PAGE_LOADS`] times: median time to the whole body, its size
/// decompressed, and on the wire compressed.
async fn page_load(base: &str, cookie: &str) -> (Duration, usize, usize) {
    let client = reqwest::Client::new();
    let get = |encoding: Option<&'static str>| {
        let mut req = client.get(format!("{base}/")).header(COOKIE, cookie);
        if let Some(e) = encoding {
            req = req.header(http::header::ACCEPT_ENCODING, e);
        }
        async move {
            let t = Instant::now();
            let r = req.send().await.expect("GET /");
            assert_eq!(r.status(), 200, "the page loads");
            let body = r.bytes().await.expect("body");
            (t.elapsed(), body.len())
        }
    };
    let (_, plain) = get(None).await;
    let mut times = Vec::with_capacity(PAGE_LOADS);
    let mut wire = 0;
    for _ in 0..PAGE_LOADS {
        let (d, n) = get(Some("gzip, deflate, br, zstd")).await;
        times.push(d);
        wire = n;
    }
    (quantile(times, 0.5), plain, wire)
}

/// The report: a Markdown table, one row per size.
pub fn table(rows: &[UsersMeasurement]) -> String {
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    let kb = |b: usize| format!("{:.0}", b as f64 / 1000.0);
    let mut out = String::from(
        "| registered | online | server start s | burst sockets/s | burst first frame p50 / p90 ms | one socket first frame p50 / p90 ms | snapshot KB | page ms | page KB (wire) | connects/s | idle KiB/socket | loaded RSS MiB | errors | server warnings |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for m in rows {
        out.push_str(&format!(
            "| {} | {} | {:.2} | {:.0} | {} / {} | {} / {} | {} | {} | {} ({}) | {:.0} | {} | {} | {} | {} |\n",
            m.registered,
            m.online,
            m.start.as_secs_f64(),
            m.burst_rate,
            ms(m.first_frame.0),
            ms(m.first_frame.1),
            ms(m.first_frame_alone.0),
            ms(m.first_frame_alone.1),
            kb(m.snapshot_bytes),
            ms(m.page.0),
            kb(m.page.1),
            kb(m.page.2),
            m.connects.1,
            m.connects
                .2
                .map_or_else(|| "n/a".into(), |b| format!("{:.1}", b as f64 / 1024.0)),
            m.loaded_rss_kib
                .map_or_else(|| "n/a".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
            m.errors,
            m.server_problems,
        ));
    }
    out
}
