//! One user's own events, repeated for several users: sign up, log in, the
//! list, connecting and disconnecting tabs, snapshot and ping. Each costs
//! the same calls every time.

use std::collections::BTreeMap;

use rollcall_local_server::gateway::GatewayOptions;
use rollcall_tests::client::Visitor;
use rollcall_tests::{PASSWORD, unique_name};
use serde_json::{Value, json};

use super::checks::{SHARDS, check_permissions, expect, shape};
use super::cloud::Cloud;
use super::pricing::{Row, print_table};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_connecting_and_disconnecting_cost_the_same_calls_each_time() {
    let Some(cloud) = Cloud::start(GatewayOptions {
        sweep_every: None,
        ..GatewayOptions::default()
    })
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

        let m = cloud.mark();
        assert_eq!(v.post_json("/api/sign_up", &creds, None).await.status, 201);
        let signup = cloud.settle(&m, |g| g.http == 1).await;
        check_permissions(&cloud, "http_signup", &signup);
        assert_eq!(
            shape(&cloud, &signup),
            expect(&[
                ("GetItem users", 1),
                ("UpdateItem users", 1),
                ("Query connections by_group", SHARDS),
            ]),
            "sign up, nobody watching"
        );
        per_event
            .entry("signup")
            .or_default()
            .push(shape(&cloud, &signup));

        let m = cloud.mark();
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

        let m = cloud.mark();
        assert_eq!(v.get_bearer("/api/users", &token).await.status, 200);
        let list = cloud.settle(&m, |g| g.http == 1).await;
        check_permissions(&cloud, "http_pages", &list);
        assert_eq!(
            shape(&cloud, &list),
            expect(&[("GetItem sessions", 1), ("Scan users", 1)]),
            "the list"
        );

        let m = cloud.mark();
        let mut tab = cloud.raw(&token).await;
        let connect = cloud.settle(&m, |g| g.ws_connect == 1).await;
        check_permissions(&cloud, "ws_connect", &connect);
        assert_eq!(
            shape(&cloud, &connect),
            expect(&[
                ("GetItem sessions", 2),
                ("GetItem users", 1),
                ("TransactWriteItems [Put connections, Update users]", 1),
                ("Query connections by_group", SHARDS),
            ]),
            "$connect of a first tab, nobody watching"
        );
        assert_eq!(connect.gateway.posts, 0);

        let m = cloud.mark();
        tab.send(r#"{"type":"snapshot"}"#).await;
        assert_eq!(tab.next().await["type"], "snapshot");
        let snapshot = cloud.settle(&m, |g| g.ws_default == 1).await;
        check_permissions(&cloud, "ws_default", &snapshot);
        assert_eq!(shape(&cloud, &snapshot), expect(&[("Scan users", 1)]));
        assert_eq!(snapshot.gateway.posts, 1);

        let m = cloud.mark();
        tab.send(r#"{"type":"ping"}"#).await;
        assert_eq!(tab.next().await["type"], "pong");
        let ping = cloud.settle(&m, |g| g.ws_default == 1).await;
        check_permissions(&cloud, "ws_default", &ping);
        assert_eq!(
            shape(&cloud, &ping),
            expect(&[("UpdateItem connections", 1)])
        );
        assert_eq!(ping.gateway.posts, 1);

        let m = cloud.mark();
        let second = cloud.raw(&token).await;
        let second_tab = cloud.settle(&m, |g| g.ws_connect == 1).await;
        check_permissions(&cloud, "ws_connect", &second_tab);
        assert_eq!(
            shape(&cloud, &second_tab),
            expect(&[
                ("GetItem sessions", 2),
                ("GetItem users", 1),
                ("TransactWriteItems [Put connections, Update users]", 1),
            ]),
            "$connect of a second tab: no event, no broadcast"
        );

        let m = cloud.mark();
        second.close().await;
        let one_of_two = cloud.settle(&m, |g| g.ws_disconnect == 1).await;
        check_permissions(&cloud, "ws_disconnect", &one_of_two);
        assert_eq!(
            shape(&cloud, &one_of_two),
            expect(&[
                ("GetItem connections", 1),
                ("GetItem users", 1),
                ("TransactWriteItems [Delete connections, Update users]", 1),
            ]),
            "$disconnect of one of two tabs"
        );

        let m = cloud.mark();
        tab.close().await;
        let disconnect = cloud.settle(&m, |g| g.ws_disconnect == 1).await;
        check_permissions(&cloud, "ws_disconnect", &disconnect);
        assert_eq!(
            shape(&cloud, &disconnect),
            expect(&[
                ("GetItem connections", 1),
                ("GetItem users", 1),
                ("TransactWriteItems [Delete connections, Update users]", 1),
                ("Query connections by_group", SHARDS),
            ]),
            "$disconnect of the last tab, nobody watching"
        );
        assert_eq!(disconnect.gateway.posts, 0);
        assert!(disconnect.gateway.connection_ms > 0);

        per_event
            .entry("connect")
            .or_default()
            .push(shape(&cloud, &connect));
        per_event
            .entry("disconnect")
            .or_default()
            .push(shape(&cloud, &disconnect));
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
                    "`$disconnect`, last tab, nobody watching",
                    "ws_disconnect",
                    disconnect,
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
            "Per event ({N} users, each: sign up, log in, list, connect, snapshot, ping, second tab, disconnects)"
        ),
        &rows,
        &cloud.tables,
    );
}
