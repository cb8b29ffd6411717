//! An event watched by many pages: one message per watcher and a group
//! listing whose cost does not grow with them (coming online, leaving —
//! announced by the sweep once the grace has passed —, signing up, logging
//! out with an open tab).

use std::time::Duration;

use rollcall::domain::Timestamp;
use rollcall_local_server::gateway::GatewayOptions;
use rollcall_tests::client::Visitor;
use rollcall_tests::{PASSWORD, unique_name};
use serde_json::json;

use super::checks::{PRESENCE_SHARDS, SHARDS, check_permissions, expect, shape};
use super::cloud::{Cloud, GRACE, LEASE};
use super::pricing::{Row, print_table};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_costs_one_message_per_watcher_and_a_fixed_group_listing() {
    // The template's grace and lease (the watchers do not ping, and the
    // sweep that announces an offline must leave them be).
    let Some(cloud) = Cloud::start(
        GatewayOptions {
            sweep_every: None,
            ..GatewayOptions::default()
        },
        &[GRACE, LEASE],
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
    // Every page's snapshot request has been answered and counted.
    cloud.settle(&start, |g| g.ws_default == M as u64).await;
    let mut rows = Vec::new();

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
    let online = cloud
        .settle(&m, |g| g.ws_connect == 1 && g.posts == M as u64)
        .await;
    check_permissions(&cloud, "ws_connect", &online);
    assert_eq!(
        shape(&cloud, &online),
        expect(&[
            ("GetItem sessions", 1),
            ("GetItem presence", 1),
            (
                "TransactWriteItems [Put connections, Update presence, ConditionCheck sessions]",
                1
            ),
            ("Query connections by_group", SHARDS),
        ]),
        "the same calls as with nobody watching: the listing is per shard, not per watcher"
    );
    assert_eq!(online.gateway.posts, M as u64);
    assert_eq!(online.gateway.posts_gone, 0);
    rows.push(Row::new(
        format!("`$connect` announced to {M} watchers"),
        "ws_connect",
        online,
    ));

    // They leave: their `$disconnect` starts the grace period and tells
    // nobody; once it has passed, the sweep sends one event to M pages.
    let m = cloud.mark().await;
    tab.close().await;
    let closed = cloud.settle(&m, |g| g.ws_disconnect == 1).await;
    check_permissions(&cloud, "ws_disconnect", &closed);
    assert_eq!(
        closed.gateway.posts, 0,
        "nothing announced within the grace"
    );
    let grace = cloud.ctx.config.offline_grace;
    let m = cloud.mark().await;
    let swept = rollcall::handlers::sweep::sweep(
        &cloud.ctx,
        Timestamp::now().plus(grace + Duration::from_secs(1)),
    )
    .await
    .expect("sweep");
    assert_eq!((swept.settled, swept.removed), (1, 0));
    for w in &mut watchers {
        w.expect_event(&name, false).await;
    }
    let offline = cloud.settle(&m, |g| g.posts == M as u64).await;
    check_permissions(&cloud, "sweep", &offline);
    assert_eq!(
        shape(&cloud, &offline),
        expect(&[
            ("Query presence by_pending", PRESENCE_SHARDS),
            ("GetItem presence", 1),
            ("UpdateItem presence", 1),
            ("Query connections by_group", SHARDS),
            ("Query connections by_lease", SHARDS),
        ])
    );
    assert_eq!(offline.gateway.posts, M as u64);
    rows.push(Row {
        direct: 1,
        ..Row::new(
            format!("sweep announcing an offline after its grace to {M} watchers"),
            "sweep",
            offline,
        )
    });

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
        .settle(&m, |g| g.http == 1 && g.posts == M as u64)
        .await;
    check_permissions(&cloud, "http_signup", &signup);
    assert_eq!(
        shape(&cloud, &signup),
        expect(&[
            ("GetItem users", 1),
            ("TransactWriteItems [Put users, Update presence]", 1),
            ("Query connections by_group", SHARDS),
        ])
    );
    assert_eq!(signup.gateway.posts, M as u64);
    rows.push(Row {
        http_requests: 1,
        ..Row::new(
            format!("sign up announced to {M} watchers"),
            "http_signup",
            signup,
        )
    });

    // Log out with one open socket: its user goes offline for M pages, the
    // socket is told and closed, and API Gateway's `$disconnect` follows.
    let leaver = unique_name("leaver");
    let token = cloud.account(&leaver).await;
    for w in &mut watchers {
        w.expect_event(&leaver, false).await;
    }
    let mut tab = cloud.raw(&token).await;
    for w in &mut watchers {
        w.expect_event(&leaver, true).await;
    }
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
        .settle(&m, |g| {
            g.http == 1 && g.ws_disconnect == 1 && g.deletes == 1
        })
        .await;
    check_permissions(&cloud, "http_logout", &logout);
    assert_eq!(
        shape(&cloud, &logout),
        expect(&[
            ("GetItem sessions", 1),
            ("DeleteItem sessions", 1),
            ("Query connections by_session", 1),
            // Unregistering it, then API Gateway's $disconnect finding it gone.
            ("GetItem connections", 2),
            // Its counters, then whether a grace period was pending (no).
            ("GetItem presence", 2),
            (
                "TransactWriteItems [Delete connections, Update presence]",
                1
            ),
            ("Query connections by_group", SHARDS),
        ])
    );
    // M events plus the page's own "logged_out" notice.
    assert_eq!(logout.gateway.posts, M as u64 + 1);
    assert_eq!(logout.gateway.deletes, 1);
    rows.push(Row {
        http_requests: 1,
        ..Row::new(
            format!("log out (`POST /api/log_out`), one open tab, {M} watchers"),
            "http_logout",
            logout,
        )
    });
    print_table(
        &format!("One broadcast to {M} watchers (plus the events that cause one)"),
        &rows,
        &cloud,
    );
}
