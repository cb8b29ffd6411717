//! Several server processes on one Redis behave as one server.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use rollcall_local_server::node::Backend;
use rollcall_tests::app::{FAST, spawn_with};
use rollcall_tests::client::Visitor;
use rollcall_tests::node_process::NodeProcess;
use rollcall_tests::redis_server::{redis_url, unique_prefix};
use rollcall_tests::unique_name;

fn redis() -> Backend {
    Backend::Redis {
        url: redis_url().to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_on_one_node_sees_users_of_another_come_and_go() {
    let prefix = unique_prefix();
    let settings = [("ROLLCALL_REDIS_PREFIX", prefix.as_str())];
    let (a, b) = (
        spawn_with(&redis(), &settings).await,
        spawn_with(&redis(), &settings).await,
    );
    let (alice, bob) = (Visitor::new(&a.base), Visitor::new(&b.base));
    let (an, bn) = (unique_name("alice"), unique_name("bob"));
    alice.register(&an).await;
    bob.register(&bn).await; // signed up on B, listed on A
    let mut on_a = alice.socket().await;
    let on_b = bob.socket().await;
    on_a.expect_event(&bn, true).await;
    assert!(
        on_b.snapshot.contains(&(an.clone(), true)),
        "B sees A's user: {:?}",
        on_b.snapshot
    );
    // Bob opens a second tab on A: still one user, no event.
    let bob_on_a = Visitor::new(&a.base);
    bob_on_a.log_in(&bn, rollcall_tests::PASSWORD).await;
    let tab = bob_on_a.socket().await;
    on_a.expect_no_event_for(&bn, Duration::from_millis(600))
        .await;
    on_b.close().await;
    on_a.expect_no_event_for(&bn, Duration::from_millis(600))
        .await;
    tab.close().await;
    on_a.expect_event(&bn, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_connects_and_disconnects_across_nodes_are_seen_once_each_in_order() {
    let prefix = unique_prefix();
    let settings = [("ROLLCALL_REDIS_PREFIX", prefix.as_str())];
    let (a, b) = (
        spawn_with(&redis(), &settings).await,
        spawn_with(&redis(), &settings).await,
    );
    let alice = Visitor::new(&a.base);
    alice.register(&unique_name("alice")).await;
    let bn = unique_name("bob");
    let (bob_a, bob_b) = (Visitor::new(&a.base), Visitor::new(&b.base));
    bob_a.register(&bn).await;
    bob_b.log_in(&bn, rollcall_tests::PASSWORD).await;
    let mut watcher = alice.socket().await;
    for _ in 0..3 {
        let tabs = join_all((0..10).map(|i| {
            if i % 2 == 0 {
                bob_a.socket()
            } else {
                bob_b.socket()
            }
        }))
        .await;
        join_all(tabs.into_iter().map(|t| t.close())).await;
    }
    // Collect bob's events until things are quiet.
    let mut seen = Vec::new();
    while let Some(m) = watcher.next_json(Duration::from_secs(2)).await {
        if m["username"] == bn.as_str() {
            seen.push(m["is_logged_in"].as_bool().expect("bool"));
        }
    }
    assert!(!seen.is_empty());
    for (i, online) in seen.iter().enumerate() {
        assert_eq!(*online, i % 2 == 0, "online/offline alternate: {seen:?}");
    }
    assert_eq!(seen.last(), Some(&false), "ends offline: {seen:?}");
    let snapshot = alice.socket().await.snapshot;
    assert!(
        !snapshot.iter().any(|(n, _)| *n == bn),
        "offline: not listed"
    );
}

async fn start_process(prefix: &str) -> NodeProcess {
    start_process_with(&[
        ("ROLLCALL_STORE", redis_url()),
        ("ROLLCALL_REDIS_PREFIX", prefix),
    ])
    .await
}

/// A real `rollcall-node` process with test timings plus `settings`.
async fn start_process_with(settings: &[(&str, &str)]) -> NodeProcess {
    let all: Vec<(&str, &str)> = FAST.iter().chain(settings).copied().collect();
    NodeProcess::start(Path::new(env!("CARGO_BIN_EXE_rollcall-node")), &all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_share_one_redis_and_a_crashed_ones_users_go_offline() {
    let prefix = unique_prefix();
    let (p1, p2) = (start_process(&prefix).await, start_process(&prefix).await);
    let (alice, bob) = (Visitor::new(&p1.base), Visitor::new(&p2.base));
    let (an, bn) = (unique_name("alice"), unique_name("bob"));
    alice.register(&an).await;
    bob.register(&bn).await;
    let mut watcher = alice.socket().await;
    let tab = bob.socket().await;
    watcher.expect_event(&bn, true).await;
    tab.close().await;
    watcher.expect_event(&bn, false).await;

    // Bob comes back on process 2, which then dies without any cleanup.
    let _tab = bob.socket().await;
    watcher.expect_event(&bn, true).await;
    let killed = Instant::now();
    p2.signal("-KILL");
    // Process 1's sweep finds bob's lease (1.5 s) expired.
    watcher.expect_event(&bn, false).await;
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(6), "offline after {took:?}");
    drop(p1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sockets_announces_offline_and_exits_cleanly() {
    let prefix = unique_prefix();
    let (p1, mut p2) = (start_process(&prefix).await, start_process(&prefix).await);
    let (alice, carol) = (Visitor::new(&p1.base), Visitor::new(&p2.base));
    let cn = unique_name("carol");
    alice.register(&unique_name("alice")).await;
    carol.register(&cn).await;
    let mut watcher = alice.socket().await;
    let mut tab = carol.socket().await;
    watcher.expect_event(&cn, true).await;
    p2.signal("-TERM");
    assert_eq!(tab.expect_closed(Duration::from_secs(5)).await, Some(1001));
    watcher.expect_event(&cn, false).await;
    let status = tokio::time::timeout(Duration::from_secs(10), p2.child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status:?}");
}

/// A rolling restart: of two processes on one Redis, one is stopped
/// (SIGTERM, as a deploy does) and its users' pages reconnect to the other
/// within the grace period: nobody is announced offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_one_of_two_processes_within_the_grace_announces_nothing() {
    let prefix = unique_prefix();
    let settings = [
        ("ROLLCALL_STORE", redis_url()),
        ("ROLLCALL_REDIS_PREFIX", prefix.as_str()),
        ("ROLLCALL_OFFLINE_GRACE_SECS", "3"),
    ];
    let (mut p1, p2) = (
        start_process_with(&settings).await,
        start_process_with(&settings).await,
    );
    let alice = Visitor::new(&p2.base);
    alice.register(&unique_name("alice")).await;
    let bn = unique_name("bob");
    let (bob_on_1, bob_on_2) = (Visitor::new(&p1.base), Visitor::new(&p2.base));
    bob_on_1.register(&bn).await;
    bob_on_2.log_in(&bn, rollcall_tests::PASSWORD).await;
    let mut watcher = alice.socket().await;
    let mut tab = bob_on_1.socket().await;
    watcher.expect_event(&bn, true).await;

    p1.signal("-TERM");
    assert_eq!(tab.expect_closed(Duration::from_secs(5)).await, Some(1001));
    let _back = bob_on_2.socket().await; // the page reconnects to the other
    watcher
        .expect_no_event_for(&bn, Duration::from_secs(4))
        .await;
    let status = tokio::time::timeout(Duration::from_secs(10), p1.child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status:?}");
    let snapshot = Visitor::new(&p2.base);
    snapshot.log_in(&bn, rollcall_tests::PASSWORD).await;
    assert!(
        snapshot
            .socket()
            .await
            .snapshot
            .contains(&(bn.clone(), true))
    );
}

/// `ROLLCALL_STORE=dynamodb` with the AWS SDK's own environment
/// (`AWS_ENDPOINT_URL` → moto): the real program, end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_program_runs_on_dynamodb_from_its_environment() {
    let endpoint = rollcall_tests::moto::endpoint().expect("moto");
    let tables = rollcall_tests::moto::unique_tables();
    let p = start_process_with(&[
        ("ROLLCALL_STORE", "dynamodb"),
        ("ROLLCALL_CREATE_TABLES", "1"),
        ("ROLLCALL_USERS_TABLE", &tables.users),
        ("ROLLCALL_PRESENCE_TABLE", &tables.presence),
        ("ROLLCALL_SESSIONS_TABLE", &tables.sessions),
        ("ROLLCALL_CONNECTIONS_TABLE", &tables.connections),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ])
    .await;
    let (alice, bob) = (Visitor::new(&p.base), Visitor::new(&p.base));
    let bn = unique_name("bob");
    alice.register(&unique_name("alice")).await;
    bob.register(&bn).await;
    let mut watcher = alice.socket().await;
    let tab = bob.socket().await;
    watcher.expect_event(&bn, true).await;
    tab.close().await;
    watcher.expect_event(&bn, false).await;
    assert_eq!(alice.get("/healthz").await.status, 200);
}
