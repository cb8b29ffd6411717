//! One user's own events, repeated for several users: sign up, log in, the
//! list, connecting and disconnecting tabs, snapshot and ping, a reload
//! within the offline grace period (its settle message then finds them
//! back), and the settle message announcing the offline once the grace has
//! passed. Each costs the same calls every time; nobody watches, so every
//! announced event is queued and listed but posted to nobody.

use std::collections::BTreeMap;

use rollcall::domain::Timestamp;
use rollcall_local_server::gateway::GatewayOptions;
use rollcall_tests::client::Visitor;
use rollcall_tests::{PASSWORD, unique_name};
use serde_json::{Value, json};

use super::checks::{ANNOUNCED, PRESENCE_SHARDS, SHARDS, check_permissions, expect, shape, with};
use super::cloud::{Cloud, GRACE, LEASE, PING, Usage};
use super::pricing::{Row, print_table};

/// Whether an announced event has been listed by `push` for every shard.
fn announced(u: &Usage) -> bool {
    u.count("push", "Query") == SHARDS
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_connecting_and_disconnecting_cost_the_same_calls_each_time() {
    // The template's grace, lease and ping: a last close starts the grace,
    // and its settle message announces the offline once it has passed.
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
    const N: usize = 3;
    let mut rows: Vec<Row> = Vec::new();
    let mut per_event: BTreeMap<&str, Vec<BTreeMap<String, usize>>> = BTreeMap::new();
    for i in 0..N {
        let name = unique_name("cost");
        let v = Visitor::new(&cloud.base);
        let creds = json!({ "username": name, "password": PASSWORD });
        let mut measured: Vec<Row> = Vec::new();
        let mut keep = |key: &'static str, row: Row, expected: BTreeMap<String, usize>| {
            check_permissions(&cloud, &row);
            let got = shape(&cloud, row.binary, &row.usage);
            assert_eq!(got, expected, "{}", row.event);
            per_event.entry(key).or_default().push(got);
            measured.push(row);
        };

        let m = cloud.mark().await;
        assert_eq!(v.post_json("/api/sign_up", &creds, None).await.status, 201);
        let signup = cloud
            .settle(&m, |u| u.gateway.http == 1 && announced(u))
            .await;
        keep(
            "signup",
            Row {
                http_requests: 1,
                ..Row::new(
                    "sign up (`POST /api/sign_up`), nobody watching",
                    "http_signup",
                    signup,
                )
            },
            with(
                &[
                    ("http_signup: GetItem users", 1),
                    ("http_signup: UpdateItem sessions", 2),
                    (
                        "http_signup: TransactWriteItems [Put users, Update presence, Update users]",
                        1,
                    ),
                ],
                &ANNOUNCED,
            ),
        );

        let m = cloud.mark().await;
        let r = v.post_json("/api/log_in", &creds, None).await;
        assert_eq!(r.status, 200);
        let token = serde_json::from_str::<Value>(&r.body).expect("JSON")["token"]
            .as_str()
            .expect("token")
            .to_owned();
        let login = cloud.settle(&m, |u| u.gateway.http == 1).await;
        keep(
            "login",
            Row {
                http_requests: 1,
                ..Row::new("log in (`POST /api/log_in`)", "http_login", login)
            },
            expect(&[
                ("http_login: GetItem users", 1),
                ("http_login: GetItem sessions", 1),
                ("http_login: UpdateItem sessions", 1),
                ("http_login: PutItem sessions", 1),
            ]),
        );

        let m = cloud.mark().await;
        assert_eq!(v.get_bearer("/api/users", &token).await.status, 200);
        let list = cloud.settle(&m, |u| u.gateway.http == 1).await;
        keep(
            "list",
            Row {
                http_requests: 1,
                ..Row::new(
                    "the list (`GET /api/users`, as `GET /`)",
                    "http_pages",
                    list,
                )
            },
            expect(&[
                ("http_pages: GetItem sessions", 1),
                ("http_pages: Query presence by_name", 1),
            ]),
        );

        let connect_calls = [
            ("ws_connect: UpdateItem sessions", 2),
            ("ws_connect: GetItem sessions", 1),
            ("ws_connect: GetItem presence", 1),
            (
                "ws_connect: TransactWriteItems [Put connections, Update presence, ConditionCheck sessions]",
                1,
            ),
        ];
        let m = cloud.mark().await;
        let mut tab = cloud.raw(&token).await;
        let connect = cloud
            .settle(&m, |u| u.gateway.ws_connect == 1 && announced(u))
            .await;
        // Its own coming online reaches it too (the fan-out runs after
        // its `$connect`).
        assert_eq!(tab.next().await["is_logged_in"], true);
        keep(
            "connect",
            Row::new(
                "`$connect`, first tab, nobody else watching",
                "ws_connect",
                connect,
            )
            .posted_by("push", 1),
            with(&connect_calls, &ANNOUNCED),
        );

        let m = cloud.mark().await;
        tab.send(r#"{"type":"snapshot"}"#).await;
        assert_eq!(tab.next().await["type"], "snapshot");
        let snapshot = cloud.settle(&m, |u| u.gateway.ws_default == 1).await;
        keep(
            "snapshot",
            Row {
                messages_in: 1,
                ..Row::new("snapshot request (`$default`)", "ws_default", snapshot)
                    .posted_by("ws_default", 1)
            },
            expect(&[("ws_default: Query presence by_online", PRESENCE_SHARDS)]),
        );

        // A client that says when its list is from also learns who joined
        // since (here: nobody, so no `joined` message).
        let since = Timestamp::now().as_millis();
        let m = cloud.mark().await;
        tab.send(&format!(r#"{{"type":"snapshot","since":{since}}}"#))
            .await;
        assert_eq!(tab.next().await["type"], "snapshot");
        let snapshot_since = cloud.settle(&m, |u| u.gateway.ws_default == 1).await;
        keep(
            "snapshot_since",
            Row {
                messages_in: 1,
                ..Row::new(
                    "snapshot request with `since` (nobody joined since)",
                    "ws_default",
                    snapshot_since,
                )
                .posted_by("ws_default", 1)
            },
            expect(&[
                ("ws_default: Query presence by_online", PRESENCE_SHARDS),
                ("ws_default: Query presence by_created", 1),
            ]),
        );

        // Within the first of every two ping periods since the connection
        // opened: this ping renews the lease (the next one would not).
        let m = cloud.mark().await;
        tab.send(r#"{"type":"ping"}"#).await;
        assert_eq!(tab.next().await["type"], "pong");
        let ping = cloud.settle(&m, |u| u.gateway.ws_default == 1).await;
        keep(
            "ping",
            Row {
                messages_in: 1,
                ..Row::new(
                    "ping renewing the lease (`$default`; every other ping — the others skip the `UpdateItem connections`)",
                    "ws_default",
                    ping,
                )
                .posted_by("ws_default", 1)
            },
            expect(&[
                ("ws_default: UpdateItem connections", 1),
            ]),
        );

        let m = cloud.mark().await;
        let second = cloud.raw(&token).await;
        let second_tab = cloud.settle(&m, |u| u.gateway.ws_connect == 1).await;
        keep(
            "second_tab",
            Row::new(
                "`$connect`, another tab (no event)",
                "ws_connect",
                second_tab,
            ),
            expect(&connect_calls),
        );

        let unregister = [
            ("ws_disconnect: GetItem connections", 1),
            ("ws_disconnect: GetItem presence", 1),
            (
                "ws_disconnect: TransactWriteItems [Delete connections, Update presence]",
                1,
            ),
        ];
        let m = cloud.mark().await;
        second.close().await;
        let one_of_two = cloud.settle(&m, |u| u.gateway.ws_disconnect == 1).await;
        keep(
            "one_of_two",
            Row::new(
                "`$disconnect`, one of two tabs (no event)",
                "ws_disconnect",
                one_of_two,
            ),
            expect(&unregister),
        );

        // The last tab: the grace starts; its end is a delayed message.
        let grace_starts = with(&unregister, &[("ws_disconnect: SendMessage settle ×1", 1)]);
        let m = cloud.mark().await;
        tab.close().await;
        // Done once the stream's record of it has reached `fanout` (which
        // finds no transition in it, and queues nothing).
        let disconnect = cloud
            .wait_changes(&m, |u| {
                u.gateway.ws_disconnect == 1 && u.sqs.len() == 1 && u.gateway.fanout == 1
            })
            .await;
        assert!(disconnect.gateway.connection_ms > 0);

        // A reload: the page is back within the grace, and nobody ever
        // saw it go.
        let m = cloud.mark().await;
        let tab = cloud.raw(&token).await;
        let reload = cloud
            .wait_changes(&m, |u| u.gateway.ws_connect == 1 && u.gateway.fanout == 1)
            .await;
        // The settle message comes once the grace has passed, and finds
        // them back: nothing to end, nothing announced.
        let m = cloud.mark().await;
        let back = cloud.settle(&m, |u| u.gateway.settle == 1).await;
        keep(
            "disconnect",
            Row::new(
                "`$disconnect`, last tab (the grace period starts; no event)",
                "ws_disconnect",
                disconnect,
            ),
            grace_starts.clone(),
        );
        keep(
            "reload",
            Row::new(
                "`$connect` within the grace, e.g. a reload (no event)",
                "ws_connect",
                reload,
            ),
            expect(&connect_calls),
        );
        keep(
            "back",
            Row::new(
                "settle message after the grace, user back (no event)",
                "settle",
                back,
            ),
            expect(&[("settle: GetItem presence", 1)]),
        );

        // Gone for good: the settle message ends the grace and announces it.
        let m = cloud.mark().await;
        tab.close().await;
        let again = cloud
            .wait(&m, |u| {
                u.gateway.ws_disconnect == 1 && u.sqs.len() == 1 && u.gateway.fanout == 1
            })
            .await;
        assert_eq!(shape(&cloud, "ws_disconnect", &again), grace_starts);
        let m = cloud.mark().await;
        let settled = cloud
            .settle(&m, |u| u.gateway.settle == 1 && announced(u))
            .await;
        keep(
            "settled",
            Row::new(
                "settle message ending the grace: offline announced, nobody watching",
                "settle",
                settled,
            ),
            with(
                &[
                    ("settle: GetItem presence", 1),
                    ("settle: UpdateItem presence", 1),
                ],
                &ANNOUNCED,
            ),
        );
        if i == 0 {
            rows.extend(measured);
        }
    }
    for (event, shapes) in &per_event {
        assert_eq!(shapes.len(), N, "{event}");
        assert!(
            shapes.windows(2).all(|w| w[0] == w[1]),
            "{event}: the same calls for each of {N} users: {shapes:?}"
        );
    }
    print_table(
        &format!(
            "Per event ({N} users, each: sign up, log in, list, connect, snapshots, ping, second tab, disconnects, a reload, the settle messages)"
        ),
        &rows,
        &cloud,
    );
}
