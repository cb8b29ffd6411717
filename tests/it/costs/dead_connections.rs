//! Connections whose `$disconnect` never came: a post finds them (410) and
//! removes them, or the sweep does once their lease runs out; and what the
//! sweep costs every minute when nothing expired.

use std::time::Duration;

use rollcall::domain::Timestamp;
use rollcall_local_server::gateway::GatewayOptions;
use rollcall_tests::client::Visitor;
use rollcall_tests::{PASSWORD, unique_name};
use serde_json::json;

use super::checks::{ANNOUNCED, PRESENCE_SHARDS, SHARDS, check_permissions, expect, shape, with};
use super::cloud::{Cloud, GRACE, Invocations};
use super::pricing::{Row, print_table};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_connections_cost_a_removal_when_a_post_or_the_sweep_finds_them() {
    // API Gateway's $disconnect is best effort: here it never comes.
    let Some(cloud) = Cloud::start(
        GatewayOptions {
            sweep_every: None,
            lose_disconnects: true,
            ..GatewayOptions::default()
        },
        // The template's grace; the tests' 1.5 s leases, to run out in time.
        &[GRACE],
        // The tests' 0.5 s pings leave the template's message rate no room
        // (its ping is 30 s); no scenario here counts a $default.
        &[("ROLLCALL_WS_MESSAGE_RATE", "off")],
    )
    .await
    else {
        return;
    };
    let start = cloud.mark().await;
    let watcher_token = cloud.account(&unique_name("watcher")).await;
    let mut watcher = cloud.watcher(&watcher_token).await;
    cloud.wait(&start, |u| u.gateway.ws_default == 1).await;
    let mut rows = Vec::new();
    // A 410 buries only a connection older than the pusher's own grace (a
    // third of the 1.5 s test lease; not the offline grace period).
    let grace = Duration::from_millis(700);

    // A broadcast meets a dead connection: 410, removal, and its user's
    // offline event to the others.
    // (Accounts first: a sign-up's announcement is a broadcast too.)
    let (dead, newcomer) = (unique_name("dead"), unique_name("newcomer"));
    let dead_token = cloud.account(&dead).await;
    watcher.expect_event(&dead, false).await;
    let token = cloud.account(&newcomer).await;
    watcher.expect_event(&newcomer, false).await;
    let tab = cloud.raw(&dead_token).await;
    watcher.expect_event(&dead, true).await;
    // Gone without a `$disconnect`, once its own coming online has been
    // posted everywhere (or that post would find it gone first) and the
    // stand-in has seen it close.
    let open = cloud.mark().await;
    drop(tab);
    cloud.wait(&open, |u| u.gateway.connection_ms > 0).await;
    tokio::time::sleep(grace).await;
    let m = cloud.mark().await;
    let _tab = cloud.raw(&token).await;
    watcher.expect_event(&newcomer, true).await;
    watcher.expect_event(&dead, false).await;
    // Posts: the newcomer's online to the watcher, the newcomer and the
    // dead connection (410: `push` unregisters it), then the dead user's
    // offline to the other two.
    let found_dead = cloud
        .settle(&m, |u| {
            u.gateway.ws_connect == 1
                && u.gateway.posts_gone == 1
                && u.gateway.posts == 4
                && u.count("push", "Query") == 2 * SHARDS
        })
        .await;
    let buried = [
        ("push: GetItem connections", 1),
        ("push: GetItem presence", 1),
        (
            "push: TransactWriteItems [Delete connections, Update presence]",
            1,
        ),
        ("fanout: SendMessageBatch push ×8", 2),
        ("push: Query connections by_group", 2 * SHARDS),
    ];
    let row = Row::new(
        "`$connect` whose broadcast meets a dead connection (410), one watcher",
        "ws_connect",
        found_dead,
    )
    .posted_by("push", 5);
    check_permissions(&cloud, &row);
    assert_eq!(
        shape(&cloud, "ws_connect", &row.usage),
        with(
            &[
                ("ws_connect: UpdateItem sessions", 2),
                ("ws_connect: GetItem sessions", 1),
                ("ws_connect: GetItem presence", 1),
                (
                    "ws_connect: TransactWriteItems [Put connections, Update presence, ConditionCheck sessions]",
                    1
                ),
            ],
            &buried
        )
    );
    let users = rollcall_tests::all_users(&*cloud.ctx.store).await;
    assert!(
        users
            .iter()
            .any(|u| u.username.as_str() == newcomer && u.is_logged_in),
        "the newcomer stays registered: {users:?}"
    );
    rows.push(row);

    // The same on a sign-up's announcement.
    let dead2 = unique_name("dead");
    let dead2_token = cloud.account(&dead2).await;
    watcher.expect_event(&dead2, false).await;
    let tab = cloud.raw(&dead2_token).await;
    watcher.expect_event(&dead2, true).await;
    // Gone without a `$disconnect`, once its own coming online has been
    // posted everywhere (or that post would find it gone first) and the
    // stand-in has seen it close.
    let open = cloud.mark().await;
    drop(tab);
    cloud.wait(&open, |u| u.gateway.connection_ms > 0).await;
    tokio::time::sleep(grace).await;
    let late = unique_name("late");
    let m = cloud.mark().await;
    let r = Visitor::new(&cloud.base)
        .post_json(
            "/api/sign_up",
            &json!({ "username": late, "password": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(r.status, 201);
    watcher.expect_event(&late, false).await;
    watcher.expect_event(&dead2, false).await;
    // Posts: the new user and dead2's departure, each to the watcher and
    // the newcomer; one 410.
    let signup = cloud
        .settle(&m, |u| {
            u.gateway.http == 1
                && u.gateway.posts_gone == 1
                && u.gateway.posts == 4
                && u.count("push", "Query") == 2 * SHARDS
        })
        .await;
    let row = Row {
        http_requests: 1,
        ..Row::new(
            "sign up whose broadcast meets a dead connection (410), one watcher",
            "http_signup",
            signup,
        )
        .posted_by("push", 5)
    };
    check_permissions(&cloud, &row);
    assert_eq!(
        shape(&cloud, "http_signup", &row.usage),
        with(
            &[
                ("http_signup: GetItem users", 1),
                ("http_signup: UpdateItem sessions", 2),
                (
                    "http_signup: TransactWriteItems [Put users, Update presence, Update users]",
                    1
                ),
            ],
            &buried
        )
    );
    rows.push(row);
    print_table("Dead connections found by a post", &rows, &cloud);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_costs_a_listing_per_shard_and_a_removal_per_expired_connection() {
    let Some(cloud) = Cloud::start(
        GatewayOptions {
            sweep_every: None,
            lose_disconnects: true,
            ..GatewayOptions::default()
        },
        // The template's grace; the tests' 1.5 s leases, to run out in time.
        &[GRACE],
        // The tests' 0.5 s pings leave the template's message rate no room
        // (its ping is 30 s); no scenario here counts a $default.
        &[("ROLLCALL_WS_MESSAGE_RATE", "off")],
    )
    .await
    else {
        return;
    };
    let watcher_token = cloud.account(&unique_name("watcher")).await;
    let mut watcher = cloud.raw(&watcher_token).await;
    // Its own coming online reaches it too (the fan-out runs after its
    // `$connect`).
    // (Its sign-up's announcement may come after its `$connect`.)
    while watcher.next().await["is_logged_in"] != true {}
    let mut rows = Vec::new();

    // A connection that went silent (no $disconnect came, no post found it).
    let silent = unique_name("silent");
    let silent_token = cloud.account(&silent).await;
    assert_eq!(
        watcher.next().await,
        json!({ "username": silent, "is_logged_in": false, "seq": 0 }),
        "the sign-up's announcement"
    );
    let tab = cloud.raw(&silent_token).await;
    assert_eq!(
        watcher.next().await,
        json!({ "username": silent, "is_logged_in": true, "seq": 1 })
    );
    // Once its own coming online has been posted everywhere (a post to it
    // after the drop would find it gone, 410, before the sweep does).
    cloud.mark().await;
    drop(tab);
    // Its lease (1.5 s in tests) runs out; the watcher's too, so the
    // watcher pings (as pages do) to keep its own.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    // Two pings half a ping period apart: one of them renews (every
    // other ping does).
    watcher.send(r#"{"type":"ping"}"#).await;
    assert_eq!(watcher.next().await["type"], "pong");
    tokio::time::sleep(Duration::from_millis(500)).await;
    watcher.send(r#"{"type":"ping"}"#).await;
    assert_eq!(watcher.next().await["type"], "pong");

    // Now (not once quiet): the watcher's lease lasts 1.5 s from its ping.
    let m = cloud.mark_now().await;
    let removed = rollcall::lambda::sweep(
        &cloud.ctx,
        lambda_http::LambdaEvent::new(json!({}), lambda_http::Context::default()),
    )
    .await
    .expect("sweep");
    assert_eq!(removed, json!({ "removed": 1, "settled": 0, "failed": 0 }));
    let mut gone = watcher.next().await;
    assert!(
        gone["last_seen"].is_u64(),
        "an offline event says when: {gone}"
    );
    gone.as_object_mut().map(|o| o.remove("last_seen"));
    assert_eq!(
        gone,
        json!({ "username": silent, "is_logged_in": false, "seq": 2 }),
        "a lost connection goes offline at once: no grace"
    );
    let sweep = cloud
        .settle(&m, |u| {
            u.gateway.posts == 1 && u.count("push", "Query") == SHARDS
        })
        .await;
    // What is left of the socket is closed: here it is gone already (410).
    assert_eq!(sweep.gateway.deletes + sweep.gateway.deletes_gone, 1);
    let row = Row {
        direct: 1,
        ..Row::new(
            "sweep removing one expired connection, one watcher",
            "sweep",
            sweep,
        )
        .posted_by("push", 1)
        .deleted_by("sweep", 1)
    };
    check_permissions(&cloud, &row);
    assert_eq!(
        shape(&cloud, "sweep", &row.usage),
        with(
            &[
                ("sweep: Query presence by_pending", PRESENCE_SHARDS),
                ("sweep: Query connections by_lease", SHARDS),
                ("sweep: GetItem connections", 1),
                ("sweep: GetItem presence", 1),
                (
                    "sweep: TransactWriteItems [Delete connections, Update presence]",
                    1
                ),
            ],
            &ANNOUNCED
        )
    );
    rows.push(row);

    // What every minute costs when nothing expired.
    let m = cloud.mark().await;
    let swept = rollcall::handlers::sweep::sweep(&cloud.ctx, Timestamp::from_millis(0))
        .await
        .expect("sweep");
    assert_eq!((swept.settled, swept.removed), (0, 0));
    let idle = cloud.settle(&m, |_| true).await;
    assert_eq!(idle.gateway.invocations(), 0);
    assert_eq!(idle.gateway.posts + idle.gateway.deletes, 0);
    let row = Row {
        direct: 1,
        ..Row::new("sweep, nothing expired (every minute)", "sweep", idle)
    };
    check_permissions(&cloud, &row);
    assert_eq!(
        shape(&cloud, "sweep", &row.usage),
        expect(&[
            ("sweep: Query presence by_pending", PRESENCE_SHARDS),
            ("sweep: Query connections by_lease", SHARDS),
        ])
    );
    rows.push(row);
    print_table("The sweep", &rows, &cloud);
}
