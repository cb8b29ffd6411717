//! The grace period on the cloud path: the same four rules as the local
//! server's (`tests/it/grace.rs`), the timer being the settle queue's delay.

use std::time::{Duration, Instant};

use rollcall_local_server::gateway::GatewayOptions;
use rollcall_tests::client::{Socket, Visitor};
use rollcall_tests::gateway::{TestGateway, spawn_gateway_on_dynamodb};
use rollcall_tests::unique_name;

async fn gateway(grace_secs: &str) -> TestGateway {
    let opts = GatewayOptions {
        sweep_every: None,
        ..GatewayOptions::default()
    };
    spawn_gateway_on_dynamodb(
        rollcall_tests::moto::fresh_store().await,
        opts,
        &[("ROLLCALL_OFFLINE_GRACE_SECS", grace_secs)],
    )
    .await
}

async fn watcher_and_bob(gw: &TestGateway) -> (Socket, Visitor, String) {
    let alice = Visitor::new(&gw.base);
    alice.register(&unique_name("alice")).await;
    let bob = Visitor::new(&gw.base);
    let name = unique_name("bob");
    bob.register(&name).await;
    (gw.socket(&alice).await, bob, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_within_the_grace_says_nothing() {
    let gw = gateway("2").await;
    let (mut watcher, bob, name) = watcher_and_bob(&gw).await;
    let tab = gw.socket(&bob).await;
    watcher.expect_event(&name, true).await;
    tab.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _back = gw.socket(&bob).await;
    watcher
        .expect_no_event_for(&name, Duration::from_secs(4))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_close_goes_offline_once_when_the_delayed_message_ends_the_grace() {
    let gw = gateway("1").await;
    let (mut watcher, bob, name) = watcher_and_bob(&gw).await;
    let tab = gw.socket(&bob).await;
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
        took < Duration::from_secs(6),
        "long after the grace: {took:?}"
    );
    assert_eq!(down, up + 1);
    watcher
        .expect_no_event_for(&name, Duration::from_secs(1))
        .await;
    assert!(gw.stats.snapshot().settle >= 1, "the settle function ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_out_is_immediate_even_while_a_grace_runs() {
    let gw = gateway("30").await;
    let (mut watcher, bob, name) = watcher_and_bob(&gw).await;
    let tab = gw.socket(&bob).await;
    watcher.expect_event(&name, true).await;
    tab.close().await; // a grace of 30 s starts
    watcher
        .expect_no_event_for(&name, Duration::from_millis(500))
        .await;
    let logged_out = Instant::now();
    bob.log_out().await;
    watcher.expect_event(&name, false).await;
    assert!(logged_out.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_return_after_the_grace_and_leave_again_is_false_true_false_each_once() {
    let gw = gateway("0.5").await;
    let (mut watcher, bob, name) = watcher_and_bob(&gw).await;
    let tab = gw.socket(&bob).await;
    let first = watcher.expect_event(&name, true).await;
    tab.close().await;
    let mut seen = vec![watcher.expect_event(&name, false).await];
    let tab = gw.socket(&bob).await;
    seen.push(watcher.expect_event(&name, true).await);
    tab.close().await;
    seen.push(watcher.expect_event(&name, false).await);
    assert_eq!(seen, [first + 1, first + 2, first + 3], "consecutive");
    watcher
        .expect_no_event_for(&name, Duration::from_secs(2))
        .await;
}
