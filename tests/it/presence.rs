//! End to end over HTTP and WebSocket against a running server on Redis:
//! every rule of the SPEC's "Presence semantics".

use std::time::{Duration, Instant};

use rollcall_local_server::node::Backend;
use rollcall_tests::app::{spawn_app, spawn_with};
use rollcall_tests::client::{Socket, Visitor, listed_users};
use rollcall_tests::redis_server::{redis_url, unique_prefix};
use rollcall_tests::{PASSWORD, unique_name};
use serde_json::json;

/// Long enough for a wrongly sent event to have arrived.
const QUIET: Duration = Duration::from_millis(600);

#[tokio::test]
async fn the_first_tab_brings_a_user_online_and_only_the_last_takes_them_offline() {
    let app = spawn_app().await;
    let (alice, bob) = (Visitor::new(&app.base), Visitor::new(&app.base));
    let (a, b) = (unique_name("alice"), unique_name("bob"));
    alice.register(&a).await;
    bob.register(&b).await;
    let mut watcher = alice.socket().await;
    // Her own arrival is in her snapshot, not sent to her as an event.
    assert!(watcher.snapshot.contains(&(a.clone(), true)));

    let tab1 = bob.socket().await;
    watcher.expect_event(&b, true).await;
    let tab2 = bob.socket().await;
    watcher.expect_no_event_for(&b, QUIET).await; // a second tab says nothing
    tab1.close().await;
    watcher.expect_no_event_for(&b, QUIET).await; // closing one of two says nothing
    tab2.close().await;
    watcher.expect_event(&b, false).await; // closing the last: offline
    watcher.expect_no_event_for(&b, QUIET).await; // exactly once
}

#[tokio::test]
async fn the_page_lists_everyone_with_their_status_and_needs_a_login() {
    let app = spawn_app().await;
    let anonymous = Visitor::new(&app.base);
    let r = anonymous.get("/").await;
    assert_eq!(
        (r.status, r.location.as_deref()),
        (302, Some("/log_in/?next=/"))
    );

    let (alice, bob) = (Visitor::new(&app.base), Visitor::new(&app.base));
    let (a, b) = (unique_name("alice"), unique_name("bob"));
    alice.register(&a).await;
    bob.register(&b).await;
    let _bob_tab = bob.socket().await;
    let page = alice.get("/").await;
    assert_eq!(page.status, 200);
    let rows = listed_users(&page.body);
    assert!(rows.contains(&(b.clone(), "Online".into())), "{rows:?}");
    assert!(rows.contains(&(a.clone(), "Offline".into())), "{rows:?}");
    assert!(
        page.body
            .contains(&format!("<li data-username=\"{b}\">{b}: Online</li>"))
    );
}

#[tokio::test]
async fn a_socket_without_a_valid_session_is_refused_before_upgrading() {
    let app = spawn_app().await;
    let url = app.ws_url();
    let origin = Some(app.base.as_str());
    assert_eq!(Socket::connect(&url, None, origin).await.err(), Some(401));
    let forged = format!("sessionid={}", "A".repeat(43));
    assert_eq!(
        Socket::connect(&url, Some(&forged), origin).await.err(),
        Some(401)
    );
    assert_eq!(
        Socket::connect(&url, Some("sessionid=garbage"), origin)
            .await
            .err(),
        Some(401)
    );
    let bad_token = format!("{url}?token={}", "B".repeat(43));
    assert_eq!(
        Socket::connect(&bad_token, None, origin).await.err(),
        Some(401)
    );
    assert_eq!(
        Socket::connect(&format!("{url}?token=%3Cx%3E"), None, origin)
            .await
            .err(),
        Some(401)
    );
}

#[tokio::test]
async fn a_foreign_origin_is_refused_even_with_a_valid_session() {
    let app = spawn_app().await;
    let v = Visitor::new(&app.base);
    v.register(&unique_name("carol")).await;
    let url = app.ws_url();
    let cookie = v.cookie_header();
    for origin in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        assert_eq!(
            Socket::connect(&url, Some(&cookie), Some(origin))
                .await
                .err(),
            Some(403),
            "{origin}"
        );
    }
    // A cookie is ambient, so a cookie-authenticated socket must show an Origin.
    assert_eq!(
        Socket::connect(&url, Some(&cookie), None).await.err(),
        Some(403)
    );
    assert!(
        Socket::connect(&url, Some(&cookie), Some(&app.base))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn logging_out_closes_that_sessions_sockets_and_announces_offline_after_the_last() {
    let app = spawn_app().await;
    let watcher_user = Visitor::new(&app.base);
    watcher_user.register(&unique_name("w")).await;
    let name = unique_name("dave");
    let (laptop, phone) = (Visitor::new(&app.base), Visitor::new(&app.base));
    laptop.register(&name).await;
    phone.log_in(&name, PASSWORD).await;
    let mut watcher = watcher_user.socket().await;
    let mut laptop_tab = laptop.socket().await;
    let _phone_tab = phone.socket().await;
    watcher.expect_event(&name, true).await;

    let r = laptop.log_out().await;
    assert_eq!((r.status, r.location.as_deref()), (302, Some("/log_in/")));
    assert_eq!(
        laptop_tab.expect_closed(Duration::from_secs(5)).await,
        Some(4001)
    );
    watcher.expect_no_event_for(&name, QUIET).await; // the phone is still online
    // The logged-out session can no longer open sockets or pages.
    let stale = laptop.get("/").await;
    assert_eq!(stale.status, 302);

    phone.log_out().await;
    watcher.expect_event(&name, false).await;
}

#[tokio::test]
async fn a_user_who_signs_up_later_appears_on_open_pages_as_offline() {
    let app = spawn_app().await;
    let alice = Visitor::new(&app.base);
    alice.register(&unique_name("alice")).await;
    let mut watcher = alice.socket().await;
    let late = unique_name("late");
    Visitor::new(&app.base).sign_up(&late, PASSWORD).await;
    watcher.expect_event(&late, false).await;
}

#[tokio::test]
async fn a_socket_that_dies_without_closing_is_reaped_within_the_configured_bound() {
    // Idle timeout 1 s, pings every 0.2 s: a frozen client is found within
    // about 1.2 s; allow generous scheduling slack, far below the lease.
    let app = spawn_app().await;
    let alice = Visitor::new(&app.base);
    alice.register(&unique_name("alice")).await;
    let name = unique_name("frozen");
    let bob = Visitor::new(&app.base);
    bob.register(&name).await;
    let mut watcher = alice.socket().await;
    let mut frozen_tab = bob.socket().await;
    watcher.expect_event(&name, true).await;
    let started = Instant::now();
    frozen_tab.freeze(); // no reads, no pongs, no FIN
    watcher.expect_event(&name, false).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "reaped too early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "reaped too late: {took:?}");
}

#[tokio::test]
async fn a_connection_dropped_without_a_close_frame_goes_offline() {
    let app = spawn_app().await;
    let alice = Visitor::new(&app.base);
    alice.register(&unique_name("alice")).await;
    let name = unique_name("crash");
    let bob = Visitor::new(&app.base);
    bob.register(&name).await;
    let mut watcher = alice.socket().await;
    let tab = bob.socket().await;
    watcher.expect_event(&name, true).await;
    tab.kill();
    watcher.expect_event(&name, false).await;
}

#[tokio::test]
async fn odd_but_valid_names_get_live_updates_like_any_other() {
    let app = spawn_app().await;
    let alice = Visitor::new(&app.base);
    alice.register(&unique_name("alice")).await;
    let mut watcher = alice.socket().await;
    // Each test has its own key prefix, so these exact names are free here.
    for name in ["a.b", "josé", "1e3", "true", "@x", "日本語", "a+b-c_d"] {
        let v = Visitor::new(&app.base);
        v.register(name).await;
        watcher.expect_event(name, false).await; // the sign-up announcement
        let tab = v.socket().await;
        watcher.expect_event(name, true).await;
        let page = alice.get("/").await;
        assert!(
            listed_users(&page.body).contains(&(name.to_owned(), "Online".into())),
            "{name}"
        );
        tab.close().await;
        watcher.expect_event(name, false).await;
    }
}

#[tokio::test]
async fn a_new_socket_starts_from_a_snapshot_of_the_truth() {
    let app = spawn_app().await;
    let (alice, bob) = (Visitor::new(&app.base), Visitor::new(&app.base));
    let (a, b) = (unique_name("alice"), unique_name("bob"));
    alice.register(&a).await;
    bob.register(&b).await;
    let _bob_tab = bob.socket().await;
    let tab = alice.socket().await;
    assert!(
        tab.snapshot.contains(&(b.clone(), true)),
        "{:?}",
        tab.snapshot
    );
    assert!(
        tab.snapshot.contains(&(a.clone(), true)),
        "own socket counts: {:?}",
        tab.snapshot
    );
}

#[tokio::test]
async fn pings_are_answered_and_junk_never_hurts_the_server() {
    let app = spawn_app().await;
    let alice = Visitor::new(&app.base);
    alice.register(&unique_name("alice")).await;
    let mut tab = alice.socket().await;
    tab.send_text(r#"{"type":"ping"}"#).await;
    let pong = loop {
        let m = tab
            .next_json(Duration::from_secs(5))
            .await
            .expect("a reply");
        if m.get("type").is_some() {
            break m;
        }
    };
    assert_eq!(pong, json!({"type": "pong"}));
    tab.send_text(r#"{"type":"snapshot"}"#).await;
    let snap = tab
        .next_json(Duration::from_secs(5))
        .await
        .expect("snapshot");
    assert_eq!(snap["type"], "snapshot");
    for junk in [
        "",
        "not json",
        "{}",
        r#"{"type":"drop_tables"}"#,
        "[1,2,3]",
        "\u{0}",
    ] {
        tab.send_text(junk).await;
    }
    // Still alive and answering.
    tab.send_text(r#"{"type":"ping"}"#).await;
    assert_eq!(
        tab.next_json(Duration::from_secs(5)).await,
        Some(json!({"type": "pong"}))
    );
    // An oversized message closes that socket (1009) and nothing else.
    tab.send_text(&"x".repeat(10_000)).await;
    assert_eq!(tab.expect_closed(Duration::from_secs(5)).await, Some(1009));
    let r = alice.get("/healthz").await;
    assert_eq!(r.status, 200);
    assert!(alice.socket().await.snapshot.iter().any(|(_, on)| *on));
}

#[tokio::test]
async fn the_json_api_and_token_sockets_work_end_to_end() {
    let app = spawn_app().await;
    let api = Visitor::new(&app.base);
    let name = unique_name("api");
    let r = api
        .post_json(
            "/api/sign_up",
            &json!({"username": name, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = api
        .post_json(
            "/api/log_in",
            &json!({"username": name, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let login: serde_json::Value = serde_json::from_str(&r.body).expect("json");
    let token = login["token"].as_str().expect("token").to_owned();
    assert!(login["expires_at"].as_str().expect("expiry").ends_with('Z'));

    let users = api.get_bearer("/api/users", &token).await;
    assert_eq!(users.status, 200);
    let list: serde_json::Value = serde_json::from_str(&users.body).expect("json");
    assert!(
        list.as_array()
            .expect("array")
            .contains(&json!({"username": name, "is_logged_in": false}))
    );

    // A programmatic client: token, no cookie, no Origin.
    let mut tab = Socket::connect(&format!("{}?token={token}", app.ws_url()), None, None)
        .await
        .expect("opens");
    assert!(tab.snapshot.contains(&(name.clone(), true)));
    let r = api
        .post_json("/api/log_out", &json!({}), Some(&token))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(tab.expect_closed(Duration::from_secs(5)).await, Some(4001));
    assert_eq!(api.get_bearer("/api/users", &token).await.status, 401);
    assert_eq!(
        api.post_json("/api/log_out", &json!({}), Some(&token))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn an_expired_session_opens_nothing() {
    let app = spawn_with(
        &Backend::Redis {
            url: redis_url().to_owned(),
        },
        &[
            ("ROLLCALL_REDIS_PREFIX", &unique_prefix()),
            ("ROLLCALL_SESSION_TTL_SECS", "1"),
        ],
    )
    .await;
    let v = Visitor::new(&app.base);
    v.register(&unique_name("brief")).await;
    assert_eq!(v.get("/").await.status, 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(v.get("/").await.status, 302);
    let cookie = v.cookie_header();
    assert_eq!(
        Socket::connect(&app.ws_url(), Some(&cookie), Some(&app.base))
            .await
            .err(),
        Some(401)
    );
}

#[tokio::test]
async fn the_memory_store_serves_the_same_app() {
    let app = spawn_with(&Backend::Memory, &[]).await;
    let (alice, bob) = (Visitor::new(&app.base), Visitor::new(&app.base));
    let (a, b) = (unique_name("alice"), unique_name("bob"));
    alice.register(&a).await;
    bob.register(&b).await;
    let mut watcher = alice.socket().await;
    let tab = bob.socket().await;
    watcher.expect_event(&b, true).await;
    tab.close().await;
    watcher.expect_event(&b, false).await;
}

#[tokio::test]
async fn stopping_the_server_closes_sockets_and_takes_their_users_offline() {
    let app = spawn_app().await;
    let v = Visitor::new(&app.base);
    let name = unique_name("leaving");
    v.register(&name).await;
    let mut tab = v.socket().await;
    let store = app.ctx.store.clone();
    app.stop().await;
    assert_eq!(tab.expect_closed(Duration::from_secs(5)).await, Some(1001));
    let list = store.list_presence().await.expect("list");
    assert!(list.iter().all(|u| !u.is_logged_in), "{list:?}");
}

#[tokio::test]
async fn the_local_server_runs_on_dynamodb_too() {
    let store = std::sync::Arc::new(rollcall_tests::moto::fresh_store().await);
    let app = spawn_with(&Backend::InProcess(store), &[]).await;
    let (alice, bob) = (Visitor::new(&app.base), Visitor::new(&app.base));
    let (a, b) = (unique_name("alice"), unique_name("bob"));
    alice.register(&a).await;
    bob.register(&b).await;
    let mut watcher = alice.socket().await;
    let tab1 = bob.socket().await;
    watcher.expect_event(&b, true).await;
    let tab2 = bob.socket().await;
    watcher.expect_no_event_for(&b, QUIET).await;
    tab1.close().await;
    tab2.close().await;
    watcher.expect_event(&b, false).await;
    bob.log_out().await;
    let late = unique_name("late");
    Visitor::new(&app.base).sign_up(&late, PASSWORD).await;
    watcher.expect_event(&late, false).await;
}
