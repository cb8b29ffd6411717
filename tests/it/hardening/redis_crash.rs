//! Issue 9, "A Redis crash loses events": Redis SIGKILLed and started
//! again while the servers keep running, from its own append-only file
//! or from an older copy of it (a rewind: transition numbers go back).
//! Watching pages (sockets that stay open across the crash, modelled by
//! [`Watcher`] with the page's rules) must get every transition after it
//! and end at the store's truth; `/readyz` says not-ready while Redis is
//! down and ready again after; no new upgrade gets a 500 once it is back.
//!
//! A third kills Redis while subjects churn on two `rollcall-node`
//! processes: every watcher gets every transition once, in order.
//!
//! Each test runs its own `redis-server` ([`RedisProcess`]); the first two
//! one real `rollcall-node` process and one in-process server on it. Leases are
//! 30 s here (the suite's 1.5 s would run out during the outage and the
//! sweep would then take the watchers' registrations: their sockets would
//! be closed, which is a different story); the grace is 0.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rollcall::store::redis::RedisStore;
use rollcall_local_server::node::Backend;
use rollcall_tests::app::{FAST, TestApp, spawn_with};
use rollcall_tests::client::{EVENT_WAIT, Seen, Socket, Visitor, Watcher};
use rollcall_tests::node_process::NodeProcess;
use rollcall_tests::redis_process::RedisProcess;
use rollcall_tests::redis_server::unique_prefix;
use rollcall_tests::{PASSWORD, all_users, unique_name};

/// How long the servers may take to notice Redis is back.
const BACK_WAIT: Duration = Duration::from_secs(20);

const LEASE: (&str, &str) = ("ROLLCALL_LEASE_SECS", "30");

/// A `rollcall-node` process and an in-process server on `redis`.
async fn servers(redis: &RedisProcess, prefix: &str) -> (NodeProcess, TestApp) {
    let url = redis.url();
    let mut settings: Vec<(&str, &str)> = FAST.to_vec();
    settings.extend([
        ("ROLLCALL_STORE", url.as_str()),
        ("ROLLCALL_REDIS_PREFIX", prefix),
        LEASE,
    ]);
    let node = NodeProcess::start(Path::new(env!("CARGO_BIN_EXE_rollcall-node")), &settings).await;
    let app = spawn_with(
        &Backend::Redis { url: url.clone() },
        &[("ROLLCALL_REDIS_PREFIX", prefix), LEASE],
    )
    .await;
    (node, app)
}

/// The store's truth: who is online, with their transition numbers.
async fn truth(redis: &RedisProcess, prefix: &str) -> BTreeMap<String, u64> {
    let store = RedisStore::connect(&redis.url(), prefix)
        .await
        .expect("connect");
    all_users(&store)
        .await
        .into_iter()
        .filter(|u| u.is_logged_in)
        .map(|u| (u.username.as_str().to_owned(), u.seq))
        .collect()
}

async fn readyz(base: &str) -> u16 {
    Visitor::new(base).get("/readyz").await.status
}

/// Polls `/readyz` of `base` until it answers `want`; how long that took.
async fn wait_readyz(base: &str, want: u16, wait: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got = readyz(base).await;
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < wait,
            "{base}/readyz still {got} after {wait:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A new tab of `v` that must open: no 500 (nor anything else) now that
/// Redis is back.
async fn tab(v: &Visitor) -> Socket {
    match v.try_socket().await {
        Ok(s) => s,
        Err(status) => panic!(
            "upgrade on {} refused with {status} after Redis is back",
            v.base
        ),
    }
}

/// Waits until `w` has received event number `index` (0-based) about
/// `name`; asserts it says `online` and that the model applied it (a
/// stale-looking event dropped is exactly the bug of issue 9). Returns its
/// transition number.
async fn expect_event(w: &Watcher, name: &str, online: bool, index: usize) -> u64 {
    let s = w
        .wait_until(EVENT_WAIT, |s| s.events_of(name).len() > index)
        .await;
    let events = s.events_of(name);
    assert!(
        events.len() > index,
        "no event {name} → {online} (#{index}) within {EVENT_WAIT:?}: got {events:?}, \
         model {:?}, closed {:?}",
        s.users.get(name),
        s.closed
    );
    let (on, seq) = events[index];
    assert_eq!(on, online, "event #{index} of {name}: {events:?}");
    assert!(
        !s.dropped.contains(&(name.to_owned(), online, seq)),
        "the page dropped {name} → {online} at {seq} as stale (events {events:?}, model {:?})",
        s.users.get(name)
    );
    seq
}

/// Waits until the model of `w` equals the store's truth; returns what it
/// has seen.
async fn converges(w: &Watcher, redis: &RedisProcess, prefix: &str, who: &str) -> Seen {
    let want = truth(redis, prefix).await;
    let s = w.wait_until(EVENT_WAIT, |s| s.online() == want).await;
    assert_eq!(s.online(), want, "{who}'s page ends at the truth ({s:?})");
    assert!(s.problems.is_empty(), "{who}: {:?}", s.problems);
    assert_eq!(s.closed, None, "{who}'s socket stayed open");
    s
}

/// What the page's JS would show, next to the model (see
/// `client::model`): printed, and reported if they differ.
fn page_js_check(who: &str, s: &Seen, want: &BTreeMap<String, u64>) -> bool {
    let js = s.page_js_online();
    if !s.page_js_dropped.is_empty() {
        eprintln!(
            "PAGE JS ({who}): templates/rollcall.js's rules would have dropped as stale: {:?}",
            s.page_js_dropped
        );
    }
    if &js == want {
        true
    } else {
        eprintln!(
            "PAGE JS DIVERGES ({who}): templates/rollcall.js's rules would show online {js:?}, \
             the truth is {want:?}"
        );
        false
    }
}

/// Redis SIGKILLed and restarted from its own file (`appendfsync
/// everysec`, as deployed; the setup's writes are given 1.5 s to be on
/// disk before the kill, though a SIGKILL loses nothing Redis wrote: see
/// [`RedisProcess`]). A tab closed while Redis is down is announced once
/// it is back; then a first tab, its close, a log-in elsewhere and a log
/// out are each seen by watchers on both servers, whose sockets stayed
/// open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_crash_every_transition_reaches_the_watchers() {
    let mut redis = RedisProcess::start().await;
    let prefix = unique_prefix();
    let (node, app) = servers(&redis, &prefix).await;
    let (wn, xn, un) = (unique_name("w"), unique_name("x"), unique_name("u"));
    let w = Visitor::new(&node.base);
    w.register(&wn).await;
    let x = Visitor::new(&app.base);
    x.register(&xn).await;
    let u = Visitor::new(&app.base);
    u.register(&un).await;
    let on_node = Watcher::new(w.socket().await);
    let on_app = Watcher::new(x.socket().await);
    // Before the crash: u came and went, and is online again.
    tab(&u).await.close().await;
    expect_event(&on_node, &un, true, 0).await;
    expect_event(&on_node, &un, false, 1).await;
    let open = tab(&u).await;
    let before = expect_event(&on_node, &un, true, 2).await;
    expect_event(&on_app, &un, true, 2).await;

    tokio::time::sleep(Duration::from_millis(1500)).await; // fsynced
    redis.kill().await;
    for base in [&node.base, &app.base] {
        let took = wait_readyz(base, 503, Duration::from_secs(10)).await;
        eprintln!("{base}/readyz not ready {took:?} after the kill");
    }
    // u's tab closes while Redis is down: the server keeps trying to
    // unregister it.
    open.close().await;
    // An upgrade or a log-in while Redis is down: 503 with Retry-After
    // (the store cannot answer), not 500.
    assert_eq!(w.socket_refusal().await, (503, Some("1".to_owned())));
    let r = Visitor::new(&app.base)
        .post_json(
            "/api/log_in",
            &serde_json::json!({ "username": un, "password": rollcall_tests::PASSWORD }),
            None,
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart().await;
    for base in [&node.base, &app.base] {
        let took = wait_readyz(base, 200, BACK_WAIT).await;
        eprintln!("{base}/readyz ready {took:?} after Redis answered");
    }

    // The close made while Redis was down, once it is back.
    let offline = expect_event(&on_node, &un, false, 3).await;
    assert!(offline > before, "{offline} after {before}");
    expect_event(&on_app, &un, false, 3).await;
    // A first tab, then its close.
    let first = tab(&u).await;
    let seq = expect_event(&on_node, &un, true, 4).await;
    assert!(
        seq > offline,
        "transition numbers move on: {seq} after {offline}"
    );
    expect_event(&on_app, &un, true, 4).await;
    first.close().await;
    expect_event(&on_node, &un, false, 5).await;
    expect_event(&on_app, &un, false, 5).await;
    // Logged in on the other server, then logged out.
    let again = Visitor::new(&node.base);
    again.log_in(&un, PASSWORD).await;
    let mut last = tab(&again).await;
    expect_event(&on_node, &un, true, 6).await;
    expect_event(&on_app, &un, true, 6).await;
    assert!(again.log_out().await.status < 400, "log out");
    expect_event(&on_node, &un, false, 7).await;
    expect_event(&on_app, &un, false, 7).await;
    // The tab is closed over the control bus, whose subscription may still
    // be in its reconnection backoff (up to 5 s) this soon after Redis came
    // back; a close it missed is made up by the next lease renewal (every
    // third of the 30 s lease), which finds the registration gone.
    let code = last.expect_closed(Duration::from_secs(12)).await;
    assert!(
        matches!(code, Some(4001 | 4002)),
        "the logged-out tab closed: {code:?}"
    );

    let want = truth(&redis, &prefix).await;
    for (who, watcher) in [("node", &on_node), ("app", &on_app)] {
        let s = converges(watcher, &redis, &prefix, who).await;
        eprintln!(
            "{who}: {} reset snapshot(s), events of u {:?}",
            s.resets,
            s.events_of(&un)
        );
        assert!(page_js_check(who, &s, &want));
    }
    assert!(want.contains_key(&wn) && want.contains_key(&xn) && !want.contains_key(&un));
}

/// Redis SIGKILLed and restarted from an older copy of its file
/// (`appendfsync always`, so the copy holds exactly the writes acknowledged
/// before it): every transition after the copy is lost, transition numbers
/// go back. The feeds notice the rewind, every socket gets a reset
/// snapshot, a tab registered after the copy is closed (its registration
/// is gone), and the users' next transitions — numbered below what the
/// watchers saw before — still reach the watchers, whose models end at the
/// truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rewind_lower_transition_numbers_still_reach_the_watchers() {
    let mut redis = RedisProcess::start_with("always").await;
    let prefix = unique_prefix();
    let (node, app) = servers(&redis, &prefix).await;
    let (wn, un, vn) = (unique_name("w"), unique_name("u"), unique_name("v"));
    let w = Visitor::new(&node.base);
    w.register(&wn).await;
    let u = Visitor::new(&app.base);
    u.register(&un).await;
    let v = Visitor::new(&app.base);
    v.register(&vn).await;
    let watcher = Watcher::new(w.socket().await);
    for name_visitor in [(&un, &u), (&vn, &v)] {
        let (name, visitor) = name_visitor;
        tab(visitor).await.close().await;
        expect_event(&watcher, name, true, 0).await;
        expect_event(&watcher, name, false, 1).await;
    }
    // The copy: u and v offline at 2, only the watcher registered.
    redis.copy_files();
    // Lost by the rewind: u 3, 4, 5 (a tab left open), v 3, 4.
    tab(&u).await.close().await;
    expect_event(&watcher, &un, true, 2).await;
    expect_event(&watcher, &un, false, 3).await;
    let mut lost_tab = tab(&u).await;
    let u_high = expect_event(&watcher, &un, true, 4).await;
    tab(&v).await.close().await;
    expect_event(&watcher, &vn, true, 2).await;
    let v_high = expect_event(&watcher, &vn, false, 3).await;

    redis.kill().await;
    for base in [&node.base, &app.base] {
        wait_readyz(base, 503, Duration::from_secs(10)).await;
    }
    redis.restore_copy();
    redis.restart().await;
    for base in [&node.base, &app.base] {
        let took = wait_readyz(base, 200, BACK_WAIT).await;
        eprintln!("{base}/readyz ready {took:?} after Redis answered");
    }
    // The node's feed saw the rewind: a reset snapshot, u and v offline.
    let s = watcher.wait_until(BACK_WAIT, |s| s.resets >= 1).await;
    assert!(s.resets >= 1, "a reset snapshot after the rewind: {s:?}");
    assert_eq!(s.users.get(&un).map(|(on, _)| *on), Some(false), "{s:?}");
    // The in-process server's too: the tab registered after the copy is
    // closed as expired (the page would reconnect).
    assert_eq!(
        lost_tab.expect_closed(BACK_WAIT).await,
        Some(4002),
        "the tab whose registration the rewind lost"
    );
    let s = converges(&watcher, &redis, &prefix, "watcher").await;
    assert_eq!(s.online().get(&wn), Some(&1), "{s:?}");

    // u (online at 5 on the page before the rewind): a first tab, its
    // close, a log-in on the other server and a log out, numbered 3 to 6.
    let first = tab(&u).await;
    let seq = expect_event(&watcher, &un, true, 5).await;
    assert!(
        seq < u_high,
        "numbers went back ({seq} after {u_high}): the point of this test"
    );
    first.close().await;
    expect_event(&watcher, &un, false, 6).await;
    let again = Visitor::new(&node.base);
    again.log_in(&un, PASSWORD).await;
    let mut last = tab(&again).await;
    expect_event(&watcher, &un, true, 7).await;
    assert!(again.log_out().await.status < 400, "log out");
    assert_eq!(last.expect_closed(Duration::from_secs(5)).await, Some(4001));
    expect_event(&watcher, &un, false, 8).await;
    // v (offline at 4 on the page before the rewind) logs in again and
    // stays: online at 3.
    let v2 = Visitor::new(&node.base);
    v2.log_in(&vn, PASSWORD).await;
    let _v_tab = tab(&v2).await;
    let seq = expect_event(&watcher, &vn, true, 4).await;
    assert!(seq < v_high, "numbers went back ({seq} after {v_high})");

    let s = converges(&watcher, &redis, &prefix, "watcher").await;
    let want = truth(&redis, &prefix).await;
    assert_eq!(want.get(&vn), Some(&seq), "{want:?}");
    eprintln!(
        "{} reset snapshot(s); events of u {:?}, of v {:?}",
        s.resets,
        s.events_of(&un),
        s.events_of(&vn)
    );
    // The page's own rules (rollcall.js) end there too: its reset
    // snapshot forgets the numbers of users it shows offline as well.
    assert!(page_js_check("watcher", &s, &want));
}

/// Redis SIGKILLed and restarted from its own file (`appendfsync always`)
/// while subjects keep opening and closing tabs on two `rollcall-node`
/// processes and watchers on both keep their sockets open (see
/// `rollcall_tests::bench::crash`, which this runs at a small size).
/// `always` guarantees the file holds every acknowledged change, so
/// nothing is lost: no node resynchronises (no reset snapshot), every
/// watcher gets every transition of the whole run — the closes made while
/// Redis was down once it is back, the churn after it — exactly once and
/// in order, and ends at the store's truth. (With `everysec` a write
/// postponed behind a slow fsync may be lost; the rewind test above is
/// that case.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_through_a_redis_kill_reaches_every_watcher_once_in_order() {
    use rollcall_tests::bench::crash::{CrashOptions, measure, table};
    let mut settings: Vec<(&str, &str)> = FAST.to_vec();
    settings.push(LEASE);
    let m = measure(
        Path::new(env!("CARGO_BIN_EXE_rollcall-node")),
        &settings,
        CrashOptions {
            watchers: 3,
            subjects: 6,
            churn: Duration::from_secs(2),
            down: Duration::from_millis(2500),
            fsync: "always",
        },
    )
    .await;
    eprintln!("{}", table(std::slice::from_ref(&m)));
    assert!(m.problems.is_empty(), "{:#?}", m.problems);
    assert_eq!(m.resets, 0, "nothing acknowledged was lost: {m:?}");
    assert!(m.audit.exact(), "{:?}", m.audit);
    assert_eq!(m.audit.expected, m.audit.received, "{m:?}");
    assert_eq!(m.closed, 0, "the watchers' sockets stayed open: {m:?}");
    assert_eq!(m.converged, m.watchers(), "every page at the truth: {m:?}");
    assert!(m.refused > 0, "upgrades were refused while Redis was down");
    assert!(
        m.first_open.is_some() && m.first_event.is_some(),
        "the churn went on after Redis came back: {m:?}"
    );
    assert!(m.ready.iter().all(|d| *d < BACK_WAIT), "{m:?}");
}
