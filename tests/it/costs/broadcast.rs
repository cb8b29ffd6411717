//! An event watched by many pages: one message per watcher, posted by the
//! `push` function outside any request, and a fan-out whose calls do not
//! grow with the watchers (one batch of one message per group shard, one
//! listing per shard): coming online, leaving (announced by the settle
//! message once the grace has passed), signing up, logging out with an
//! open tab.

use rollcall_local_server::gateway::GatewayOptions;
use rollcall_tests::client::Visitor;
use rollcall_tests::{PASSWORD, unique_name};
use serde_json::json;

use super::checks::{ANNOUNCED, SHARDS, check_permissions, shape, with};
use super::cloud::{Cloud, GRACE, LEASE, PING, Usage};
use super::pricing::{Row, print_table};

/// Whether `posts` posts were made and the event listed for every shard.
fn delivered(u: &Usage, posts: u64) -> bool {
    u.gateway.posts == posts && u.count("push", "Query") == SHARDS
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_costs_one_message_per_watcher_and_a_fixed_fan_out() {
    // The template's grace, lease and ping (the watchers do not ping within
    // the test's length).
    let Some(cloud) = Cloud::start(
        GatewayOptions {
            sweep_every: None,
            ..GatewayOptions::default()
        },
        &[GRACE, LEASE, PING],
        &[],
    )
    .await
    else {
        return;
    };
    const M: usize = 10;
    let start = cloud.mark().await;
    let mut watchers = Vec::new();
    for _ in 0..M {
        let name = unique_name("watcher");
        let token = cloud.account(&name).await;
        watchers.push(cloud.watcher(&token).await);
    }
    // Every page's snapshot request has been answered, every watcher's
    // own coming online pushed.
    cloud
        .wait(&start, |u| {
            u.gateway.ws_default == M as u64 && u.count("push", "Query") == 2 * M * SHARDS
        })
        .await;
    let mut rows = Vec::new();
    let check = |row: &Row, own: &[(&str, usize)]| {
        check_permissions(&cloud, row);
        assert_eq!(
            shape(&cloud, row.binary, &row.usage),
            with(own, &ANNOUNCED),
            "{}: the same calls as with nobody watching — the fan-out is per shard, not per watcher",
            row.event
        );
    };

    // Someone comes online: one event to M pages (after the one that
    // announced their sign-up).
    let name = unique_name("newcomer");
    let token = cloud.account(&name).await;
    for w in &mut watchers {
        w.expect_event(&name, false).await;
    }
    let m = cloud.mark().await;
    let tab = cloud.raw(&token).await;
    for w in &mut watchers {
        w.expect_event(&name, true).await;
    }
    // The newcomer's own socket is in its group too.
    let online = cloud
        .settle(&m, |u| {
            u.gateway.ws_connect == 1 && delivered(u, M as u64 + 1)
        })
        .await;
    assert_eq!(online.gateway.posts_gone, 0);
    let row = Row::new(
        format!("`$connect` announced to {M} watchers"),
        "ws_connect",
        online,
    )
    .posted_by("push", M as u64 + 1);
    check(
        &row,
        &[
            ("ws_connect: UpdateItem sessions", 2),
            ("ws_connect: GetItem sessions", 1),
            ("ws_connect: GetItem presence", 1),
            (
                "ws_connect: TransactWriteItems [Put connections, Update presence, ConditionCheck sessions]",
                1,
            ),
        ],
    );
    rows.push(row);

    // They leave: their `$disconnect` starts the grace period and tells
    // nobody; once it has passed, the settle message ends it and the
    // fan-out sends one event to the M pages.
    let m = cloud.mark().await;
    tab.close().await;
    for w in &mut watchers {
        w.expect_event(&name, false).await;
    }
    let offline = cloud
        .settle(&m, |u| u.gateway.settle == 1 && delivered(u, M as u64))
        .await;
    let row = Row::new(
        format!("last tab closed, announced to {M} watchers once the grace has passed"),
        "ws_disconnect",
        offline,
    )
    .posted_by("push", M as u64);
    check(
        &row,
        &[
            ("ws_disconnect: GetItem connections", 1),
            ("ws_disconnect: GetItem presence", 1),
            (
                "ws_disconnect: TransactWriteItems [Delete connections, Update presence]",
                1,
            ),
            ("ws_disconnect: SendMessage settle ×1", 1),
            ("settle: GetItem presence", 1),
            ("settle: UpdateItem presence", 1),
        ],
    );
    rows.push(row);

    // A sign-up is announced too (as offline).
    let late = unique_name("late");
    let v = Visitor::new(&cloud.base);
    let m = cloud.mark().await;
    let r = v
        .post_json(
            "/api/sign_up",
            &json!({ "username": late, "password": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(r.status, 201);
    for w in &mut watchers {
        w.expect_event(&late, false).await;
    }
    let signup = cloud
        .settle(&m, |u| u.gateway.http == 1 && delivered(u, M as u64))
        .await;
    let row = Row {
        http_requests: 1,
        ..Row::new(
            format!("sign up announced to {M} watchers"),
            "http_signup",
            signup,
        )
        .posted_by("push", M as u64)
    };
    check(
        &row,
        &[
            ("http_signup: GetItem users", 1),
            ("http_signup: UpdateItem sessions", 2),
            (
                "http_signup: TransactWriteItems [Put users, Update presence, Update users]",
                1,
            ),
        ],
    );
    rows.push(row);

    // Log out with one open socket: its user goes offline for M pages at
    // once (no grace), the socket is told and closed, and API Gateway's
    // `$disconnect` follows and finds it gone.
    let leaver = unique_name("leaver");
    let token = cloud.account(&leaver).await;
    for w in &mut watchers {
        w.expect_event(&leaver, false).await;
    }
    let m = cloud.mark().await;
    let mut tab = cloud.raw(&token).await;
    for w in &mut watchers {
        w.expect_event(&leaver, true).await;
    }
    cloud.wait(&m, |u| delivered(u, M as u64 + 1)).await;
    assert_eq!(tab.next().await["is_logged_in"], true, "its own online");
    let m = cloud.mark().await;
    let r = Visitor::new(&cloud.base)
        .post_json("/api/log_out", &json!({}), Some(&token))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(tab.next().await, json!({"type": "logged_out"}));
    for w in &mut watchers {
        w.expect_event(&leaver, false).await;
    }
    let logout = cloud
        .settle(&m, |u| {
            u.gateway.http == 1
                && u.gateway.ws_disconnect == 1
                && u.gateway.deletes == 1
                && delivered(u, M as u64 + 1)
        })
        .await;
    // M events plus the page's own "logged_out" notice.
    let row = Row {
        http_requests: 1,
        ..Row::new(
            format!("log out (`POST /api/log_out`), one open tab, {M} watchers"),
            "http_logout",
            logout,
        )
        .posted_by("http_logout", 1)
        .posted_by("push", M as u64)
        .deleted_by("http_logout", 1)
    };
    check(
        &row,
        &[
            ("http_logout: GetItem sessions", 1),
            ("http_logout: DeleteItem sessions", 1),
            ("http_logout: Query connections by_session", 1),
            ("http_logout: GetItem connections", 1),
            // Its counters, then whether a grace period was pending (no).
            ("http_logout: GetItem presence", 2),
            (
                "http_logout: TransactWriteItems [Delete connections, Update presence]",
                1,
            ),
            // API Gateway's $disconnect, finding it gone.
            ("ws_disconnect: GetItem connections", 1),
        ],
    );
    rows.push(row);
    print_table(
        &format!("One broadcast to {M} watchers (plus the events that cause one)"),
        &rows,
        &cloud,
    );
}
