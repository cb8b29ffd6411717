//! The offline grace period (`ROLLCALL_OFFLINE_GRACE_SECS`), end to end on
//! Redis: a last socket replaced within it announces nothing and the user
//! stays listed online; one not replaced goes offline once, when it ends;
//! log out skips it; transitions stay consecutive and once each.

use std::time::{Duration, Instant};

use rollcall_local_server::node::Backend;
use rollcall_tests::app::{TestApp, spawn_with};
use rollcall_tests::client::Visitor;
use rollcall_tests::redis_server::{redis_url, unique_prefix};
use rollcall_tests::unique_name;

async fn app(grace_secs: &str) -> TestApp {
    let prefix = unique_prefix();
    spawn_with(
        &Backend::Redis {
            url: redis_url().to_owned(),
        },
        &[
            ("ROLLCALL_REDIS_PREFIX", prefix.as_str()),
            ("ROLLCALL_OFFLINE_GRACE_SECS", grace_secs),
        ],
    )
    .await
}

/// Two users: a watcher's socket and a registered `bob`.
async fn watcher_and_bob(app: &TestApp) -> (rollcall_tests::client::Socket, Visitor, String) {
    let alice = Visitor::new(&app.base);
    alice.register(&unique_name("alice")).await;
    let bob = Visitor::new(&app.base);
    let name = unique_name("bob");
    bob.register(&name).await;
    (alice.socket().await, bob, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_reopened_within_the_grace_announces_nothing_and_stays_online() {
    let app = app("2").await;
    let (mut watcher, bob, name) = watcher_and_bob(&app).await;
    let tab = bob.socket().await;
    watcher.expect_event(&name, true).await;
    tab.close().await; // a refresh: the old page's socket goes…
    // …and while it is gone, a new socket's snapshot still shows bob online.
    let during = Visitor::new(&app.base);
    during.register(&unique_name("carol")).await;
    let snap = during.socket().await.snapshot;
    assert!(snap.contains(&(name.clone(), true)), "{snap:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _back = bob.socket().await; // …and the new page's socket comes
    watcher
        .expect_no_event_for(&name, Duration::from_millis(2_500))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_gone_longer_than_the_grace_goes_offline_once_when_it_ends() {
    let app = app("1").await;
    let (mut watcher, bob, name) = watcher_and_bob(&app).await;
    let tab = bob.socket().await;
    let up = watcher.expect_event(&name, true).await;
    let closed = Instant::now();
    tab.close().await;
    let down = watcher.expect_event(&name, false).await;
    let took = closed.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "before the grace: {took:?}"
    );
    assert!(
        took < Duration::from_secs(4),
        "long after the grace: {took:?}"
    );
    assert_eq!(down, up + 1);
    watcher
        .expect_no_event_for(&name, Duration::from_millis(800))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_out_is_immediate_even_while_a_grace_runs() {
    let app = app("30").await;
    let (mut watcher, bob, name) = watcher_and_bob(&app).await;
    let tab = bob.socket().await;
    watcher.expect_event(&name, true).await;
    tab.close().await; // a grace of 30 s starts
    watcher
        .expect_no_event_for(&name, Duration::from_millis(300))
        .await;
    let logged_out = Instant::now();
    bob.log_out().await;
    watcher.expect_event(&name, false).await;
    assert!(logged_out.elapsed() < Duration::from_secs(5));

    // With a socket open, log out closes it and is immediate too.
    bob.log_in(&name, rollcall_tests::PASSWORD).await;
    let _tab = bob.socket().await;
    watcher.expect_event(&name, true).await;
    let logged_out = Instant::now();
    bob.log_out().await;
    watcher.expect_event(&name, false).await;
    assert!(logged_out.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_return_after_the_grace_and_leave_again_is_false_true_false_each_once() {
    let app = app("0.5").await;
    let (mut watcher, bob, name) = watcher_and_bob(&app).await;
    let tab = bob.socket().await;
    let first = watcher.expect_event(&name, true).await;
    tab.close().await;
    let mut seen = vec![watcher.expect_event(&name, false).await];
    let tab = bob.socket().await;
    seen.push(watcher.expect_event(&name, true).await);
    tab.close().await;
    seen.push(watcher.expect_event(&name, false).await);
    assert_eq!(seen, [first + 1, first + 2, first + 3], "consecutive");
    watcher
        .expect_no_event_for(&name, Duration::from_millis(1_000))
        .await;
}
