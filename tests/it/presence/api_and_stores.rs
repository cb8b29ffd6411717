//! End to end, beyond the page: pings and junk on the socket, the JSON API
//! with token sockets, expired sessions, shutdown, and the same app on the
//! memory and DynamoDB stores.

use rollcall_local_server::node::Backend;
use rollcall_tests::app::{spawn_app, spawn_with};
use rollcall_tests::client::{Socket, Visitor};
use rollcall_tests::redis_server::{redis_url, unique_prefix};
use rollcall_tests::{PASSWORD, unique_name};
use serde_json::json;
use std::time::Duration;

use super::QUIET;

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
            .contains(&json!({"username": name, "is_logged_in": false, "seq": 0}))
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
    let list = rollcall_tests::all_users(&*store).await;
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
