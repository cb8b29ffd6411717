//! Test support for rollcall's integration, end-to-end and browser tests.
//!
//! # Layout
//!
//! * [`redis_server`] — one real `redis-server` per test binary, and a fresh
//!   key prefix per test so tests run in parallel without cleanup.
//! * [`app`] — [`app::spawn_app`]: a real server on `127.0.0.1:0`.
//! * [`client`] — an HTTP visitor with a cookie jar and CSRF handling, and a
//!   WebSocket client that reads presence events.
//! * [`gateway`] — the Lambda functions behind the local API Gateway stand-in.
//! * [`browser`] — headless Chromium over WebDriver (chromedriver).
//! * [`node_process`] — a real `rollcall-node` server process.
//! * [`redis_process`] — a `redis-server` with its append-only file that a
//!   test can SIGKILL and restart (or rewind).
//! * [`bench`] — the fan-out and memory benchmark (`rollcall-bench`).

pub mod app;
pub mod bench;
pub mod browser;
pub mod client;
pub mod gateway;
pub mod moto;
pub mod node_process;
pub mod redis_process;
pub mod redis_server;

/// Every user of `store` with their presence, page by page.
pub async fn all_users(store: &dyn rollcall::store::Store) -> Vec<rollcall::domain::UserPresence> {
    let mut all: Vec<rollcall::domain::UserPresence> = Vec::new();
    loop {
        let after = all.last().map(|u| u.username.clone());
        let page = store
            .list_users(after.as_ref(), None, 1000)
            .await
            .expect("list");
        all.extend(page.items);
        if page.next.is_none() {
            return all;
        }
    }
}

/// A password hash for seeded users (nobody logs in as them).
pub const SEEDED_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2VlZGVkc2VlZGVk$c2VlZGVkIGJ5IHRoZSBiZW5jaCwgbm90IGEgaGFzaA";

/// Creates every user of `names` straight in `store` (64 at a time), as a
/// sign-up would (each logged: a running server's view picks them up).
pub async fn seed_users(
    store: &dyn rollcall::store::Store,
    names: impl IntoIterator<Item = String>,
) {
    use futures_util::{StreamExt, stream};
    stream::iter(names)
        .map(|n| async move {
            let user = rollcall::store::UserRecord {
                username: rollcall::domain::Username::parse(&n).expect("a valid name"),
                password_hash: SEEDED_HASH.to_owned(),
                created_at: rollcall::domain::Timestamp::now(),
            };
            store.create_user(&user).await.expect("seed a user");
        })
        .buffer_unordered(64)
        .collect::<()>()
        .await;
}

/// A password every test user can use.
pub const PASSWORD: &str = "correct horse battery";

/// A username unique to this test run (`prefix` + a counter + process id).
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}_{}",
        N.fetch_add(1, Ordering::Relaxed),
        std::process::id()
    )
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
