//! Socket limits through the real servers: upgrades per session and per
//! client address (429 with `Retry-After` before upgrading), open sockets
//! per user across processes (429), client messages per socket (close 4029
//! locally, the connection deleted on the cloud path), and a socket closed
//! when its session expires (4001).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rollcall::store::memory::MemoryStore;
use rollcall_local_server::gateway::GatewayOptions;
use rollcall_local_server::node::Backend;
use rollcall_tests::app::spawn_with;
use rollcall_tests::client::{Socket, Visitor};
use rollcall_tests::gateway::{page_attr, spawn_gateway};
use rollcall_tests::redis_server::{redis_url, unique_prefix};
use rollcall_tests::{all_users, unique_name};
use serde_json::json;

fn retry_after(r: &Option<String>) -> u64 {
    r.as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a Retry-After in seconds: {r:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_per_session_are_limited_with_429_before_upgrading() {
    let app = spawn_with(
        &Backend::Memory,
        &[("ROLLCALL_WS_UPGRADES_PER_SESSION", "3/1m")],
    )
    .await;
    let (bob, other) = (Visitor::new(&app.base), Visitor::new(&app.base));
    bob.register(&unique_name("bob")).await;
    other.register(&unique_name("other")).await;
    for _ in 0..3 {
        bob.socket().await.close().await;
    }
    let (status, after) = bob.socket_refusal().await;
    assert_eq!(status, 429);
    assert!((1..=60).contains(&retry_after(&after)), "{after:?}");
    // Another session is counted on its own.
    let _tab = other.socket().await;
    // Nothing was registered for the refusal: bob is offline.
    let bob_row = all_users(&*app.ctx.store)
        .await
        .into_iter()
        .find(|u| u.username.as_str().starts_with("bob"))
        .expect("bob");
    assert!(!bob_row.is_logged_in);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_per_address_count_refused_tokens_too() {
    let app = spawn_with(
        &Backend::Memory,
        &[("ROLLCALL_WS_UPGRADES_PER_ADDR", "2/1m")],
    )
    .await;
    let v = Visitor::new(&app.base);
    v.register(&unique_name("amy")).await;
    // Guessed tokens are refused (401) but counted against the address.
    let forged = format!("{}?token={}", app.ws_url(), "0".repeat(64));
    for _ in 0..2 {
        let r = rollcall_tests::client::refusal(&forged, None, None).await;
        assert_eq!(r.map(|(s, _)| s), Some(401));
    }
    let (status, after) = v.socket_refusal().await;
    assert_eq!(
        status, 429,
        "the address is over its limit, even with a good cookie"
    );
    retry_after(&after);
}

/// The cap counts a user's sockets on every process sharing one Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_sockets_per_user_are_capped_across_processes() {
    let prefix = unique_prefix();
    let settings = [
        ("ROLLCALL_REDIS_PREFIX", prefix.as_str()),
        ("ROLLCALL_WS_MAX_PER_USER", "3"),
    ];
    let redis = Backend::Redis {
        url: redis_url().to_owned(),
    };
    let (a, b) = (
        spawn_with(&redis, &settings).await,
        spawn_with(&redis, &settings).await,
    );
    let name = unique_name("tabs");
    let (on_a, on_b) = (Visitor::new(&a.base), Visitor::new(&b.base));
    on_a.register(&name).await;
    on_b.log_in(&name, rollcall_tests::PASSWORD).await;
    let t1 = on_a.socket().await;
    let _t2 = on_b.socket().await;
    let _t3 = on_a.socket().await;
    let (status, after) = on_b.socket_refusal().await;
    assert_eq!(status, 429, "a fourth tab, on the other process");
    assert_eq!(after, None, "a cap, not a window: no Retry-After");
    assert_eq!(on_a.try_socket().await.err(), Some(429));
    // Closing one makes room.
    t1.close().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match on_b.try_socket().await {
            Ok(_tab) => break,
            Err(429) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(s) => panic!("still refused: {s}"),
        }
    }
}

/// The page pings every `ROLLCALL_CLIENT_PING_SECS` (5 s here): 5 messages
/// per 10 s leaves it room, a client sending more is closed with 4029.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_over_its_message_rate_is_closed_with_4029() {
    let app = spawn_with(
        &Backend::Memory,
        &[
            ("ROLLCALL_CLIENT_PING_SECS", "5"),
            ("ROLLCALL_LEASE_SECS", "15"),
            ("ROLLCALL_WS_MESSAGE_RATE", "5/10s"),
        ],
    )
    .await;
    let v = Visitor::new(&app.base);
    v.register(&unique_name("chatty")).await;
    let mut tab = v.socket().await;
    for i in 0..5 {
        tab.send_text(r#"{"type":"ping"}"#).await;
        let m = tab.next_json(Duration::from_secs(5)).await;
        assert_eq!(m, Some(json!({"type": "pong"})), "ping {i}");
    }
    tab.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(tab.expect_closed(Duration::from_secs(5)).await, Some(4029));
    let metrics = v.get("/metrics").await.body;
    assert!(
        metrics.contains("rollcall_sockets_closed_total{reason=\"too_many_messages\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("rollcall_rate_limited_total{rule=\"ws:message\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_is_closed_when_its_session_expires() {
    let app = spawn_with(&Backend::Memory, &[("ROLLCALL_SESSION_TTL_SECS", "2")]).await;
    let v = Visitor::new(&app.base);
    let name = unique_name("brief");
    v.register(&name).await;
    let logged_in = Instant::now();
    let mut tab = v.socket().await;
    assert_eq!(tab.expect_closed(Duration::from_secs(5)).await, Some(4001));
    let took = logged_in.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
    // Its user went offline (no grace in the tests' timings).
    let deadline = Instant::now() + Duration::from_secs(5);
    while all_users(&*app.ctx.store)
        .await
        .iter()
        .any(|u| u.username.as_str() == name && u.is_logged_in)
    {
        assert!(Instant::now() < deadline, "still online");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And the session cannot open another.
    assert_eq!(v.try_socket().await.err(), Some(401));
}

/// The cloud path: `$connect` refuses over the upgrade limit and the cap
/// (429), and `$default` deletes a connection over its message rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloud_path_limits_upgrades_tabs_and_messages() {
    let gw = spawn_gateway(
        Arc::new(MemoryStore::new()),
        GatewayOptions::default(),
        &[
            ("ROLLCALL_WS_UPGRADES_PER_SESSION", "4/1m"),
            ("ROLLCALL_WS_MAX_PER_USER", "2"),
            // The page pings every 2 s; the test sockets every 0.3 s,
            // faster than 4 per 2 s.
            ("ROLLCALL_CLIENT_PING_SECS", "2"),
            ("ROLLCALL_LEASE_SECS", "6"),
            ("ROLLCALL_WS_MESSAGE_RATE", "4/2s"),
        ],
    )
    .await;
    let v = Visitor::new(&gw.base);
    v.register(&unique_name("cloudy")).await;
    let home = v.get("/").await;
    let url = format!(
        "{}?token={}",
        page_attr(&home.body, "data-ws-url"),
        v.session_token()
    );
    let attempt = || rollcall_tests::client::refusal(&url, None, Some(&gw.base));
    // t1 pings every 0.3 s, t2 hardly ever.
    let mut t1 = Socket::connect_cloud(&url, Some(&gw.base), Duration::from_millis(300))
        .await
        .expect("first");
    let _t2 = Socket::connect_cloud(&url, Some(&gw.base), Duration::from_secs(60))
        .await
        .expect("second");
    // A third and fourth tab: over the cap.
    for _ in 0..2 {
        assert_eq!(attempt().await.map(|(s, _)| s), Some(429), "over the cap");
    }
    // A fifth upgrade this minute: over the session's limit.
    assert_eq!(attempt().await.map(|(s, _)| s), Some(429), "over the rate");
    // t1's pings are faster than 4 per 2 s: its connection is deleted.
    t1.expect_closed(Duration::from_secs(10)).await;
}
