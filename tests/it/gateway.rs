//! End to end through the **cloud code path**: the Lambda functions'
//! adapters behind the local API Gateway stand-in (genuine events parsed by
//! `lambda_http`, pushes through the real SDK to `@connections`), on
//! DynamoDB served by moto. The same presence scenarios as the local
//! server's.

use std::time::{Duration, Instant};

use rollcall_local_server::gateway::GatewayOptions;
use rollcall_tests::client::{Socket, Visitor};
use rollcall_tests::gateway::{TestGateway, spawn_gateway_on_dynamodb};
use rollcall_tests::{PASSWORD, unique_name};

const QUIET: Duration = Duration::from_millis(800);

async fn gateway(opts: GatewayOptions) -> TestGateway {
    spawn_gateway_on_dynamodb(rollcall_tests::moto::fresh_store().await, opts, &[]).await
}

fn quick() -> GatewayOptions {
    GatewayOptions {
        sweep_every: None,
        ..GatewayOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tabs_come_and_go_with_exactly_the_right_events() {
    let gw = gateway(quick()).await;
    let (alice, bob) = (Visitor::new(&gw.base), Visitor::new(&gw.base));
    let (a, b) = (unique_name("alice"), unique_name("bob"));
    alice.register(&a).await;
    bob.register(&b).await;
    let mut watcher = gw.socket(&alice).await;
    let tab1 = gw.socket(&bob).await;
    watcher.expect_event(&b, true).await;
    let tab2 = gw.socket(&bob).await;
    watcher.expect_no_event_for(&b, QUIET).await;
    tab1.close().await;
    watcher.expect_no_event_for(&b, QUIET).await;
    tab2.close().await;
    watcher.expect_event(&b, false).await;
    // The page's own view: the snapshot a new socket gets.
    let again = gw.socket(&alice).await;
    assert!(
        !again.snapshot.iter().any(|(n, _)| *n == b),
        "offline: not listed"
    );
    assert!(again.snapshot.contains(&(a.clone(), true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_need_a_session_and_an_allowed_origin() {
    let gw = gateway(quick()).await;
    let v = Visitor::new(&gw.base);
    v.register(&unique_name("carol")).await;
    let home = v.get("/").await;
    let token = rollcall_tests::gateway::page_attr(&home.body, "data-ws-token");
    let ping = rollcall_tests::gateway::PING;
    let origin = Some(gw.base.as_str());
    assert_eq!(
        Socket::connect_cloud(&gw.ws_url, origin, ping).await.err(),
        Some(401)
    );
    let forged = format!("{}?token={}", gw.ws_url, "A".repeat(43));
    assert_eq!(
        Socket::connect_cloud(&forged, origin, ping).await.err(),
        Some(401)
    );
    let real = format!("{}?token={token}", gw.ws_url);
    assert_eq!(
        Socket::connect_cloud(&real, Some("https://evil.example"), ping)
            .await
            .err(),
        Some(403)
    );
    // The session cookie is not sent to the WebSocket API's other origin:
    // and a cookie alone from a foreign page is refused too.
    let cookie = v.cookie_header();
    assert_eq!(
        Socket::connect(&gw.ws_url, Some(&cookie), Some("https://evil.example"))
            .await
            .err(),
        Some(403)
    );
    assert!(Socket::connect_cloud(&real, origin, ping).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_closes_that_sessions_sockets() {
    let gw = gateway(quick()).await;
    let watcher_user = Visitor::new(&gw.base);
    watcher_user.register(&unique_name("w")).await;
    let name = unique_name("dave");
    let (laptop, phone) = (Visitor::new(&gw.base), Visitor::new(&gw.base));
    laptop.register(&name).await;
    phone.log_in(&name, PASSWORD).await;
    let mut watcher = gw.socket(&watcher_user).await;
    let mut laptop_tab = gw.socket(&laptop).await;
    let _phone_tab = gw.socket(&phone).await;
    watcher.expect_event(&name, true).await;

    let r = laptop.log_out().await;
    assert_eq!((r.status, r.location.as_deref()), (302, Some("/log_in/")));
    // API Gateway cannot send a close code: the page is told first (pongs
    // and presence events, its own arrival included, may come before).
    let told = loop {
        let m = laptop_tab.next_json(Duration::from_secs(10)).await;
        if m.as_ref()
            .is_none_or(|m| m["type"] != "pong" && m.get("type").is_some())
        {
            break m;
        }
    };
    assert_eq!(told, Some(serde_json::json!({"type": "logged_out"})));
    assert_eq!(
        laptop_tab.expect_closed(Duration::from_secs(10)).await,
        Some(1000)
    );
    watcher.expect_no_event_for(&name, QUIET).await;
    phone.log_out().await;
    watcher.expect_event(&name, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_sign_up_appears_on_open_pages() {
    let gw = gateway(quick()).await;
    let alice = Visitor::new(&gw.base);
    alice.register(&unique_name("alice")).await;
    let mut watcher = gw.socket(&alice).await;
    let late = unique_name("late");
    Visitor::new(&gw.base).sign_up(&late, PASSWORD).await;
    watcher.expect_event(&late, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_disconnect_was_lost_is_removed_on_its_first_410() {
    // API Gateway's $disconnect is best effort: here it never comes.
    let gw = gateway(GatewayOptions {
        lose_disconnects: true,
        ..quick()
    })
    .await;
    let (alice, bob, carol) = (
        Visitor::new(&gw.base),
        Visitor::new(&gw.base),
        Visitor::new(&gw.base),
    );
    let (b, c) = (unique_name("bob"), unique_name("carol"));
    alice.register(&unique_name("alice")).await;
    bob.register(&b).await;
    carol.register(&c).await;
    let mut watcher = gw.socket(&alice).await;
    let tab = gw.socket(&bob).await;
    watcher.expect_event(&b, true).await;
    tab.kill();
    watcher.expect_no_event_for(&b, QUIET).await; // nobody knows yet
    // The next broadcast posts to bob's dead connection: 410, exactly that
    // connection is removed, and bob — whose last it was — goes offline.
    let _carol_tab = gw.socket(&carol).await;
    watcher.expect_event(&c, true).await;
    watcher.expect_event(&b, false).await;
    let users = rollcall_tests::all_users(&*gw.ctx.store).await;
    assert!(
        users
            .iter()
            .any(|u| u.username.as_str() == c && u.is_logged_in),
        "carol untouched: {users:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_sweep_takes_a_silent_connection_offline() {
    // Lease 1.5 s; sweep every 250 ms. Bob's client stops pinging.
    let opts = GatewayOptions {
        lose_disconnects: true,
        sweep_every: Some(Duration::from_millis(250)),
        ..GatewayOptions::default()
    };
    let gw = gateway(opts).await;
    let (alice, bob) = (Visitor::new(&gw.base), Visitor::new(&gw.base));
    let b = unique_name("bob");
    alice.register(&unique_name("alice")).await;
    bob.register(&b).await;
    let mut watcher = gw.socket(&alice).await;
    let home = bob.get("/").await;
    let token = rollcall_tests::gateway::page_attr(&home.body, "data-ws-token");
    // A client that never pings (an hour between pings).
    let mut silent = Socket::connect_cloud(
        &format!("{}?token={token}", gw.ws_url),
        Some(&gw.base),
        Duration::from_secs(3600),
    )
    .await
    .expect("opens");
    watcher.expect_event(&b, true).await;
    let started = Instant::now();
    watcher.expect_event(&b, false).await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    // The sweep also closed what was left of bob's connection.
    assert_eq!(
        silent.expect_closed(Duration::from_secs(10)).await,
        Some(1000)
    );
}
