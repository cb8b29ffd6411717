//! One user's own events, repeated for several users: sign up, log in, the
//! list, connecting and disconnecting tabs, snapshot and ping, a reload
//! within the offline grace period, and the sweep announcing the offline
//! once the grace has passed. Each costs the same calls every time.

use std::collections::BTreeMap;
use std::time::Duration;

use rollcall::domain::Timestamp;
use rollcall_local_server::gateway::GatewayOptions;
use rollcall_tests::client::Visitor;
use rollcall_tests::{PASSWORD, unique_name};
use serde_json::{Value, json};

use super::checks::{PRESENCE_SHARDS, SHARDS, check_permissions, expect, shape};
use super::cloud::{Cloud, GRACE, LEASE};
use super::pricing::{Row, print_table};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_connecting_and_disconnecting_cost_the_same_calls_each_time() {
    // The template's grace and lease: a last close starts the grace, and
    // the sweep (run here as EventBridge would) announces the offline.
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
    const N: usize = 4;
    let mut rows: Vec<Row> = Vec::new();
    let mut per_event: BTreeMap<&str, Vec<BTreeMap<String, usize>>> = BTreeMap::new();
    for i in 0..N {
        let name = unique_name("cost");
        let v = Visitor::new(&cloud.base);
        let creds = json!({ "username": name, "password": PASSWORD });

        let m = cloud.mark().await;
        assert_eq!(v.post_json("/api/sign_up", &creds, None).await.status, 201);
        let signup = cloud.settle(&m, |g| g.http == 1).await;
        check_permissions(&cloud, "http_signup", &signup);
        assert_eq!(
            shape(&cloud, &signup),
            expect(&[
                ("GetItem users", 1),
                ("TransactWriteItems [Put users, Update presence]", 1),
                ("Query connections by_group", SHARDS),
            ]),
            "sign up, nobody watching"
        );
        per_event
            .entry("signup")
            .or_default()
            .push(shape(&cloud, &signup));

        let m = cloud.mark().await;
        let r = v.post_json("/api/log_in", &creds, None).await;
        assert_eq!(r.status, 200);
        let token = serde_json::from_str::<Value>(&r.body).expect("JSON")["token"]
            .as_str()
            .expect("token")
            .to_owned();
        let login = cloud.settle(&m, |g| g.http == 1).await;
        check_permissions(&cloud, "http_login", &login);
        assert_eq!(
            shape(&cloud, &login),
            expect(&[("GetItem users", 1), ("PutItem sessions", 1)]),
            "log in"
        );

        let m = cloud.mark().await;
        assert_eq!(v.get_bearer("/api/users", &token).await.status, 200);
        let list = cloud.settle(&m, |g| g.http == 1).await;
        check_permissions(&cloud, "http_pages", &list);
        assert_eq!(
            shape(&cloud, &list),
            expect(&[("GetItem sessions", 1), ("Query presence by_name", 1)]),
            "the list: one page of the index by name"
        );

        let m = cloud.mark().await;
        let mut tab = cloud.raw(&token).await;
        let connect = cloud.settle(&m, |g| g.ws_connect == 1).await;
        check_permissions(&cloud, "ws_connect", &connect);
        assert_eq!(
            shape(&cloud, &connect),
            expect(&[
                ("GetItem sessions", 1),
                ("GetItem presence", 1),
                (
                    "TransactWriteItems [Put connections, Update presence, ConditionCheck sessions]",
                    1
                ),
                ("Query connections by_group", SHARDS),
            ]),
            "$connect of a first tab, nobody watching"
        );
        assert_eq!(connect.gateway.posts, 0);

        let m = cloud.mark().await;
        tab.send(r#"{"type":"snapshot"}"#).await;
        assert_eq!(tab.next().await["type"], "snapshot");
        let snapshot = cloud.settle(&m, |g| g.ws_default == 1).await;
        check_permissions(&cloud, "ws_default", &snapshot);
        assert_eq!(
            shape(&cloud, &snapshot),
            expect(&[("Query presence by_online", PRESENCE_SHARDS)]),
            "the online users by key, whatever the number of users"
        );
        assert_eq!(snapshot.gateway.posts, 1);

        // A client that says when its list is from also learns who joined
        // since (here: nobody, so no `joined` message).
        let since = Timestamp::now().as_millis();
        let m = cloud.mark().await;
        tab.send(&format!(r#"{{"type":"snapshot","since":{since}}}"#))
            .await;
        assert_eq!(tab.next().await["type"], "snapshot");
        let snapshot_since = cloud.settle(&m, |g| g.ws_default == 1).await;
        check_permissions(&cloud, "ws_default", &snapshot_since);
        assert_eq!(
            shape(&cloud, &snapshot_since),
            expect(&[
                ("Query presence by_online", PRESENCE_SHARDS),
                ("Query presence by_created", 1),
            ])
        );
        assert_eq!(snapshot_since.gateway.posts, 1);

        let m = cloud.mark().await;
        tab.send(r#"{"type":"ping"}"#).await;
        assert_eq!(tab.next().await["type"], "pong");
        let ping = cloud.settle(&m, |g| g.ws_default == 1).await;
        check_permissions(&cloud, "ws_default", &ping);
        assert_eq!(
            shape(&cloud, &ping),
            expect(&[("UpdateItem connections", 1)])
        );
        assert_eq!(ping.gateway.posts, 1);

        let m = cloud.mark().await;
        let second = cloud.raw(&token).await;
        let second_tab = cloud.settle(&m, |g| g.ws_connect == 1).await;
        check_permissions(&cloud, "ws_connect", &second_tab);
        assert_eq!(
            shape(&cloud, &second_tab),
            expect(&[
                ("GetItem sessions", 1),
                ("GetItem presence", 1),
                (
                    "TransactWriteItems [Put connections, Update presence, ConditionCheck sessions]",
                    1
                ),
            ]),
            "$connect of a second tab: no event, no broadcast"
        );

        let m = cloud.mark().await;
        second.close().await;
        let one_of_two = cloud.settle(&m, |g| g.ws_disconnect == 1).await;
        check_permissions(&cloud, "ws_disconnect", &one_of_two);
        let unregister = expect(&[
            ("GetItem connections", 1),
            ("GetItem presence", 1),
            (
                "TransactWriteItems [Delete connections, Update presence]",
                1,
            ),
        ]);
        assert_eq!(
            shape(&cloud, &one_of_two),
            unregister,
            "$disconnect of one of two tabs"
        );

        let m = cloud.mark().await;
        tab.close().await;
        let disconnect = cloud.settle(&m, |g| g.ws_disconnect == 1).await;
        check_permissions(&cloud, "ws_disconnect", &disconnect);
        assert_eq!(
            shape(&cloud, &disconnect),
            unregister,
            "$disconnect of the last tab: the grace period starts, nothing is announced"
        );
        assert_eq!(disconnect.gateway.posts, 0);
        assert!(disconnect.gateway.connection_ms > 0);

        // A reload: the page is back within the grace, and nobody ever
        // saw it go.
        let m = cloud.mark().await;
        let tab = cloud.raw(&token).await;
        let reload = cloud.settle(&m, |g| g.ws_connect == 1).await;
        check_permissions(&cloud, "ws_connect", &reload);
        assert_eq!(
            shape(&cloud, &reload),
            expect(&[
                ("GetItem sessions", 1),
                ("GetItem presence", 1),
                (
                    "TransactWriteItems [Put connections, Update presence, ConditionCheck sessions]",
                    1
                ),
            ]),
            "$connect within the grace: the pending offline is cancelled, no event"
        );
        let m = cloud.mark().await;
        tab.close().await;
        let again = cloud.settle(&m, |g| g.ws_disconnect == 1).await;
        check_permissions(&cloud, "ws_disconnect", &again);
        assert_eq!(shape(&cloud, &again), unregister);

        // The grace passes with no tab back: the next sweep announces it.
        let grace = cloud.ctx.config.offline_grace;
        let m = cloud.mark().await;
        let swept = rollcall::handlers::sweep::sweep(
            &cloud.ctx,
            Timestamp::now().plus(grace + Duration::from_secs(1)),
        )
        .await
        .expect("sweep");
        assert_eq!((swept.settled, swept.removed), (1, 0));
        let settled = cloud.settle(&m, |_| true).await;
        check_permissions(&cloud, "sweep", &settled);
        assert_eq!(
            shape(&cloud, &settled),
            expect(&[
                ("Query presence by_pending", PRESENCE_SHARDS),
                ("GetItem presence", 1),
                ("UpdateItem presence", 1),
                ("Query connections by_group", SHARDS),
                ("Query connections by_lease", SHARDS),
            ]),
            "the sweep after the grace: one settled offline, announced to nobody"
        );
        assert_eq!(settled.gateway.posts, 0);

        per_event
            .entry("connect")
            .or_default()
            .push(shape(&cloud, &connect));
        per_event
            .entry("disconnect")
            .or_default()
            .push(shape(&cloud, &disconnect));
        per_event
            .entry("reload")
            .or_default()
            .push(shape(&cloud, &reload));
        per_event
            .entry("settled")
            .or_default()
            .push(shape(&cloud, &settled));
        if i == 0 {
            let rows_of = [
                (
                    "sign up (`POST /api/sign_up`), nobody watching",
                    "http_signup",
                    signup,
                    1,
                    0,
                ),
                ("log in (`POST /api/log_in`)", "http_login", login, 1, 0),
                (
                    "the list (`GET /api/users`, as `GET /`)",
                    "http_pages",
                    list,
                    1,
                    0,
                ),
                (
                    "`$connect`, first tab, nobody watching",
                    "ws_connect",
                    connect,
                    0,
                    0,
                ),
                (
                    "snapshot request (`$default`)",
                    "ws_default",
                    snapshot,
                    0,
                    1,
                ),
                (
                    "snapshot request with `since` (nobody joined since)",
                    "ws_default",
                    snapshot_since,
                    0,
                    1,
                ),
                ("ping (`$default`)", "ws_default", ping, 0, 1),
                (
                    "`$connect`, another tab (no event)",
                    "ws_connect",
                    second_tab,
                    0,
                    0,
                ),
                (
                    "`$disconnect`, one of two tabs (no event)",
                    "ws_disconnect",
                    one_of_two,
                    0,
                    0,
                ),
                (
                    "`$disconnect`, last tab (the grace period starts; no event)",
                    "ws_disconnect",
                    disconnect,
                    0,
                    0,
                ),
                (
                    "`$connect` within the grace, e.g. a reload (no event)",
                    "ws_connect",
                    reload,
                    0,
                    0,
                ),
            ];
            for (event, binary, usage, http_requests, messages_in) in rows_of {
                rows.push(Row {
                    http_requests,
                    messages_in,
                    ..Row::new(event, binary, usage)
                });
            }
            rows.push(Row {
                direct: 1,
                ..Row::new(
                    "sweep announcing one offline after its grace, nobody watching",
                    "sweep",
                    settled,
                )
            });
        }
    }
    for (event, shapes) in &per_event {
        assert_eq!(shapes.len(), N);
        assert!(
            shapes.windows(2).all(|w| w[0] == w[1]),
            "{event}: the same calls for each of {N} users: {shapes:?}"
        );
    }
    print_table(
        &format!(
            "Per event ({N} users, each: sign up, log in, list, connect, snapshots, ping, second tab, disconnects, a reload, the sweep)"
        ),
        &rows,
        &cloud,
    );
}
