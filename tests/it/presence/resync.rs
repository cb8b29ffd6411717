//! A store whose event log went away (Redis restarted empty, or from an
//! older file): every process notices, reloads its view and sends every
//! socket a fresh snapshot, and later events arrive as usual.

use rollcall_tests::app::spawn_with;
use rollcall_tests::client::{EVENT_WAIT, Visitor, users_of};
use rollcall_tests::redis_server::{redis_url, unique_prefix};
use rollcall_tests::unique_name;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_event_log_resynchronises_every_socket_and_events_go_on() {
    let prefix = unique_prefix();
    let app = spawn_with(
        &rollcall_local_server::node::Backend::Redis {
            url: redis_url().to_owned(),
        },
        &[("ROLLCALL_REDIS_PREFIX", prefix.as_str())],
    )
    .await;
    let alice = Visitor::new(&app.base);
    alice.register(&unique_name("alice")).await;
    let (bob, bn) = (Visitor::new(&app.base), unique_name("bob"));
    bob.register(&bn).await;
    let mut watcher = alice.socket().await;

    // The log and its counter vanish, the state stays (as after a restart
    // from a file written before those entries).
    let client = redis::Client::open(redis_url()).expect("url");
    let mut raw = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}log"))
        .arg(format!("{prefix}log:n"))
        .query_async(&mut raw)
        .await
        .expect("del");

    // Bob's arrival is entry 1 of the new log: the feed sees the counter
    // went back, reloads and resynchronises.
    let tab = bob.socket().await;
    let deadline = tokio::time::Instant::now() + EVENT_WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let m = watcher
            .next_json(left)
            .await
            .expect("a fresh snapshot after the log was lost");
        if m["type"] == "snapshot" {
            assert_eq!(m["reset"], true, "{m}");
            assert!(users_of(&m).contains(&(bn.clone(), true)), "{m}");
            break;
        }
    }
    tab.close().await;
    watcher.expect_event(&bn, false).await;
}
