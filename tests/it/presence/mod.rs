//! End to end over HTTP and WebSocket against a running server on Redis:
//! every rule of the SPEC's "Presence semantics".

use std::time::{Duration, Instant};

use rollcall_tests::app::spawn_app;
use rollcall_tests::client::{Socket, Visitor, listed_users};
use rollcall_tests::{PASSWORD, unique_name};

mod api_and_stores;
mod resync;

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
    // The tutorial's markup, with the transition number as an attribute.
    assert!(
        page.body.contains(&format!(
            "<li data-username=\"{b}\" data-seq=\"1\">{b}: Online</li>"
        )),
        "{}",
        page.body
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
