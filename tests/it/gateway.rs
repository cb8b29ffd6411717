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
    let token = v.session_token();
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
    let token = bob.session_token();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloud_page_opens_its_socket_with_a_single_use_ticket() {
    let gw = gateway(quick()).await;
    let v = Visitor::new(&gw.base);
    v.register(&unique_name("erin")).await;
    let token = v.session_token();
    let home = v.get("/").await;
    assert_eq!(home.status, 200);
    assert!(
        !home.body.contains(&token),
        "the page must not hold the session token"
    );
    assert!(!home.body.contains("data-ws-token"));
    let ping = rollcall_tests::gateway::PING;
    let origin = Some(gw.base.as_str());
    let with = |ticket: &str| format!("{}?ticket={ticket}", gw.ws_url);

    // A ticket opens one socket; its second use is refused.
    let ticket = v.ws_ticket().await.expect("a ticket");
    assert_ne!(ticket, token);
    let socket = Socket::connect_cloud(&with(&ticket), origin, ping)
        .await
        .expect("the ticket opens a socket");
    assert_eq!(
        Socket::connect_cloud(&with(&ticket), origin, ping)
            .await
            .err(),
        Some(401),
        "a ticket is single use"
    );
    // Each open needs a new one; a ticket is not a session token either.
    let second = v.ws_ticket().await.expect("another ticket");
    assert_ne!(second, ticket);
    assert_eq!(
        Socket::connect_cloud(&format!("{}?token={second}", gw.ws_url), origin, ping)
            .await
            .err(),
        Some(401)
    );
    let _tab2 = Socket::connect_cloud(&with(&second), origin, ping)
        .await
        .expect("a fresh ticket opens another");

    // A foreign page's socket is refused before the ticket is taken.
    let third = v.ws_ticket().await.expect("a ticket");
    assert_eq!(
        Socket::connect_cloud(&with(&third), Some("https://evil.example"), ping)
            .await
            .err(),
        Some(403)
    );
    assert!(
        Socket::connect_cloud(&with(&third), origin, ping)
            .await
            .is_ok()
    );

    // Forged and unknown tickets.
    for forged in ["A".repeat(43), "%3Cx%3E".to_owned(), String::new()] {
        assert_eq!(
            Socket::connect_cloud(&with(&forged), origin, ping)
                .await
                .err(),
            Some(401),
            "{forged:?}"
        );
    }
    socket.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_orphaned_ticket_opens_nothing() {
    use rollcall::domain::{SessionToken, Timestamp};
    let gw = gateway(quick()).await;
    let v = Visitor::new(&gw.base);
    v.register(&unique_name("frank")).await;
    let session = SessionToken::parse(&v.session_token())
        .expect("a token")
        .key();
    let ping = rollcall_tests::gateway::PING;
    let origin = Some(gw.base.as_str());
    // A ticket of this session whose 30 s are up (made in the store: the
    // endpoint only makes fresh ones).
    let expired = SessionToken::generate();
    gw.ctx
        .store
        .create_ticket(
            &expired.key(),
            &session,
            Timestamp::from_millis(Timestamp::now().as_millis() - 1),
        )
        .await
        .expect("create ticket");
    let url = format!("{}?ticket={}", gw.ws_url, expired.expose());
    assert_eq!(
        Socket::connect_cloud(&url, origin, ping).await.err(),
        Some(401),
        "expired"
    );
    // A ticket whose session ended (logged out) before it was used.
    let ticket = v.ws_ticket().await.expect("a ticket");
    let r = v.log_out().await;
    assert_eq!(r.status, 302);
    assert_eq!(
        Socket::connect_cloud(&format!("{}?ticket={ticket}", gw.ws_url), origin, ping)
            .await
            .err(),
        Some(401),
        "the session ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_are_only_for_a_session_and_never_cross_site() {
    let gw = gateway(quick()).await;
    let v = Visitor::new(&gw.base);
    v.register(&unique_name("gina")).await;
    let url = format!("{}/api/ws_ticket", gw.base);
    let http = reqwest::Client::new();
    let cookie = v.cookie_header();
    let status = |r: reqwest::Response| r.status().as_u16();
    // A form POST (what another site's page could send): 415.
    let form = http
        .post(&url)
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", &gw.base)
        .body("a=b")
        .send()
        .await
        .expect("request");
    assert_eq!(status(form), 415);
    // JSON from a foreign Origin (or a cross-site fetch): 403.
    let foreign = http
        .post(&url)
        .header("cookie", &cookie)
        .header("content-type", "application/json")
        .header("origin", "https://evil.example")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(status(foreign), 403);
    let cross = http
        .post(&url)
        .header("cookie", &cookie)
        .header("content-type", "application/json")
        .header("sec-fetch-site", "cross-site")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(status(cross), 403);
    // No session: 401; GET: 405.
    assert_eq!(Visitor::new(&gw.base).ws_ticket().await.err(), Some(401));
    let get = http
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .expect("request");
    assert_eq!(status(get), 405);
    // A program's bearer token gets one too, and it opens a socket.
    let token = v.session_token();
    let r = Visitor::new(&gw.base)
        .post_json("/api/ws_ticket", &serde_json::json!({}), Some(&token))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
    assert_eq!(body["expires_in"], 30);
    let ticket = body["ticket"].as_str().expect("ticket");
    assert!(
        Socket::connect_cloud(
            &format!("{}?ticket={ticket}", gw.ws_url),
            None,
            rollcall_tests::gateway::PING
        )
        .await
        .is_ok(),
        "a ticket needs no Origin (no browser sends it by itself)"
    );
}

/// A socket whose session expires is closed (issue 9): its lease stops at
/// the session's end however often the page pings, so the scheduled sweep
/// removes the connection — its user goes offline — and deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_is_closed_when_its_session_expires() {
    let opts = GatewayOptions {
        sweep_every: Some(Duration::from_millis(250)),
        ..GatewayOptions::default()
    };
    let gw = spawn_gateway_on_dynamodb(
        rollcall_tests::moto::fresh_store().await,
        opts,
        &[("ROLLCALL_SESSION_TTL_SECS", "3")],
    )
    .await;
    let v = Visitor::new(&gw.base);
    let name = unique_name("brief");
    let before = Instant::now();
    v.register(&name).await;
    // The page's socket: a ticket, then pings every 0.3 s (each renewal
    // due asks for a lease of 1.5 s).
    let mut tab = gw.socket(&v).await;
    let online = |want: bool| {
        let store = gw.ctx.store.clone();
        let name = name.clone();
        async move {
            rollcall_tests::all_users(&*store)
                .await
                .iter()
                .any(|u| u.username.as_str() == name && u.is_logged_in == want)
        }
    };
    assert!(online(true).await);
    assert_eq!(tab.expect_closed(Duration::from_secs(10)).await, Some(1000));
    let took = before.elapsed();
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(8),
        "closed {took:?} after logging in (session: 3 s)"
    );
    assert!(online(false).await, "offline once the sweep removed it");
    assert_eq!(v.ws_ticket().await.err(), Some(401), "the session is over");
}
