//! What each event costs on the cloud code path, counted: the Lambda
//! functions' adapters behind the local API Gateway stand-in, on DynamoDB
//! served by moto, with every DynamoDB request recorded by an SDK
//! interceptor (operation, table, index, consistency) and tagged with the
//! function that sent it (`gateway::current_function`), and the stand-in's
//! own counters for invocations and `@connections` calls.
//!
//! The tests assert the exact calls per event, so the numbers in
//! `infra/README.md` ("Costs") are the code's; they print the table the
//! README shows (`cargo test -p rollcall-tests --test it costs -- --nocapture`).
//! Every call observed is also checked against the IAM role the template
//! gives the function that made it: a missing permission fails here, not in
//! production.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use futures_util::{SinkExt, StreamExt};
use http::HeaderValue;
use rollcall::config::Tables;
use rollcall::domain::Timestamp;
use rollcall::store::dynamodb::DynamoStore;
use rollcall::store::dynamodb::schema::GROUP_SHARDS;
use rollcall_local_server::gateway::{self, GatewayOptions, GatewayStats, StatsSnapshot};
use rollcall_tests::client::{Socket, Visitor};
use rollcall_tests::{PASSWORD, unique_name};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::infra::{self, Eval};

/// One DynamoDB request as sent (one per attempt: what DynamoDB bills).
#[derive(Debug, Clone)]
struct Call {
    /// The function that sent it (`http`, `ws_connect`, …), `None` outside
    /// the stand-in (the test's own calls, a sweep the test runs).
    function: Option<&'static str>,
    /// `GetItem`, `Query`, … (from `X-Amz-Target`).
    op: String,
    /// The table, or for `TransactWriteItems` each item's
    /// (`Put`|`Update`|`Delete`|`ConditionCheck`, table).
    table: String,
    items: Vec<(String, String)>,
    index: Option<String>,
    consistent: bool,
}

/// Records every DynamoDB request of the client it is installed in.
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Call>>>);

impl Recorder {
    fn len(&self) -> usize {
        self.0.lock().expect("recorder").len()
    }

    fn since(&self, from: usize) -> Vec<Call> {
        self.0.lock().expect("recorder")[from..].to_vec()
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "rollcall-tests-call-recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = context.request();
        let op = req
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("?")
            .to_owned();
        let body: Value = req
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let items = body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let (kind, spec) = item.as_object()?.iter().next()?;
                Some((kind.clone(), text(&spec["TableName"])))
            })
            .collect();
        self.0.lock().expect("recorder").push(Call {
            function: gateway::current_function(),
            op,
            table: text(&body["TableName"]),
            items,
            index: body["IndexName"].as_str().map(str::to_owned),
            consistent: body["ConsistentRead"] == true,
        });
        Ok(())
    }
}

/// The Lambda functions behind the stand-in, on fresh moto tables, counted.
struct Cloud {
    base: String,
    ws_url: String,
    ctx: rollcall::AppContext,
    stats: GatewayStats,
    calls: Recorder,
    tables: Tables,
    _stop: DropGuard,
}

/// A reading of every counter, to measure what happens after it.
struct Mark {
    calls: usize,
    gateway: StatsSnapshot,
}

/// What one event cost.
#[derive(Debug, Clone)]
struct Usage {
    calls: Vec<Call>,
    gateway: StatsSnapshot,
}

impl Cloud {
    /// `None` (after moto said `SKIPPED`) without moto.
    async fn start(opts: GatewayOptions) -> Option<Self> {
        let calls = Recorder::default();
        let base = rollcall_tests::moto::client()?;
        let conf = base
            .config()
            .to_builder()
            .interceptor(calls.clone())
            .build();
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(conf),
            rollcall_tests::moto::unique_tables(),
        );
        store
            .create_tables()
            .await
            .expect("create the tables in moto");
        let tables = store.tables().clone();
        // The tests' fast timings: leases of 1.5 s, which matters only to
        // the sweep and 410 scenarios (no sweep runs unless asked for).
        let mut config = rollcall_tests::app::config(&[]);
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let ws = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (http_addr, ws_addr) = (
            http.local_addr().expect("addr"),
            ws.local_addr().expect("addr"),
        );
        gateway::cli::configure(&mut config, http_addr, ws_addr, &opts.stage);
        let ws_url = config.ws_url.clone().expect("ws url");
        let ctx = rollcall::lambda::context_with(
            config,
            Arc::new(store),
            &gateway::cli::local_sdk_config(),
        )
        .expect("context");
        let stats = GatewayStats::default();
        let stop = CancellationToken::new();
        tokio::spawn(gateway::serve_with_stats(
            ctx.clone(),
            http,
            ws,
            opts,
            stats.clone(),
            stop.clone(),
        ));
        Some(Self {
            base: format!("http://{http_addr}"),
            ws_url,
            ctx,
            stats,
            calls,
            tables,
            _stop: stop.drop_guard(),
        })
    }

    fn mark(&self) -> Mark {
        Mark {
            calls: self.calls.len(),
            gateway: self.stats.snapshot(),
        }
    }

    fn usage(&self, since: &Mark) -> Usage {
        Usage {
            calls: self.calls.since(since.calls),
            gateway: self.stats.snapshot().since(&since.gateway),
        }
    }

    /// Waits until the counters since `since` satisfy `done`, then gives
    /// the usage (invocations count once the function returned, so every
    /// DynamoDB call they made is in).
    async fn settle(&self, since: &Mark, done: impl Fn(&StatsSnapshot) -> bool) -> Usage {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let u = self.usage(since);
            if done(&u.gateway) {
                // Anything else still in flight would show up here.
                tokio::time::sleep(Duration::from_millis(150)).await;
                let again = self.usage(since);
                assert_eq!(
                    again.calls.len(),
                    u.calls.len(),
                    "calls kept coming after the event"
                );
                return again;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "event did not complete: {:?}",
                u.gateway
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Signs `name` up and logs in through the JSON API; the session token.
    async fn account(&self, name: &str) -> String {
        let v = Visitor::new(&self.base);
        let body = json!({ "username": name, "password": PASSWORD });
        assert_eq!(v.post_json("/api/sign_up", &body, None).await.status, 201);
        self.token(name).await
    }

    async fn token(&self, name: &str) -> String {
        let v = Visitor::new(&self.base);
        let body = json!({ "username": name, "password": PASSWORD });
        let r = v.post_json("/api/log_in", &body, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v: Value = serde_json::from_str(&r.body).expect("JSON");
        v["token"].as_str().expect("token").to_owned()
    }

    /// A socket as a program would open it: `?token=`, the page's Origin,
    /// and nothing sent until the test says so.
    async fn raw(&self, token: &str) -> Raw {
        let mut req = format!("{}?token={token}", self.ws_url)
            .into_client_request()
            .expect("ws url");
        req.headers_mut()
            .insert("origin", HeaderValue::from_str(&self.base).expect("origin"));
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("the upgrade is accepted");
        Raw(ws)
    }

    /// A watching page: socket, snapshot, and no ping for the test's length.
    async fn watcher(&self, token: &str) -> Socket {
        Socket::connect_cloud(
            &format!("{}?token={token}", self.ws_url),
            Some(&self.base),
            Duration::from_secs(3600),
        )
        .await
        .expect("socket opens")
    }
}

/// A bare client socket.
struct Raw(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Raw {
    async fn send(&mut self, text: &str) {
        self.0.send(Message::text(text)).await.expect("send");
    }

    /// The next JSON message.
    async fn next(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), self.0.next())
                .await
                .expect("a message in time")
                .expect("socket open")
                .expect("a frame");
            if let Message::Text(t) = m {
                return serde_json::from_str(t.as_str()).expect("JSON");
            }
        }
    }

    /// Closes with a close frame, as a tab does.
    async fn close(mut self) {
        let _ = self.0.close(None).await;
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout(Duration::from_secs(2), self.0.next()).await
        {}
    }
}

/// DynamoDB request units, US on-demand rules, for items this small (every
/// item is under 1 KB; every read under 4 KB): a strongly consistent read
/// 1 RRU, an eventually consistent one (index queries) 0.5; a write 1 WRU,
/// transactional 2 per item; and each write of a connection item is
/// repeated in its indexes: 3 index writes to add or delete one, 2 to move
/// its `lease_until` (a key of `by_lease`).
fn request_units(calls: &[Call], tables: &Tables) -> (f64, f64) {
    let (mut rru, mut wru) = (0.0, 0.0);
    let index_writes = |kind: &str, table: &str| -> f64 {
        if table != tables.connections {
            return 0.0;
        }
        match kind {
            "Put" | "Delete" | "PutItem" | "DeleteItem" => 3.0,
            "Update" | "UpdateItem" => 2.0,
            _ => 0.0,
        }
    };
    for c in calls {
        match c.op.as_str() {
            "GetItem" | "Scan" => rru += if c.consistent { 1.0 } else { 0.5 },
            "Query" => rru += 0.5,
            "PutItem" | "UpdateItem" | "DeleteItem" => wru += 1.0 + index_writes(&c.op, &c.table),
            "TransactWriteItems" => {
                for (kind, table) in &c.items {
                    wru += 2.0 + index_writes(kind, table);
                }
            }
            other => panic!("unexpected DynamoDB call {other}"),
        }
    }
    (rru, wru)
}

/// `Query by_group ×8`-style counts of DynamoDB operations.
fn op_counts(calls: &[Call]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for c in calls {
        *counts.entry(c.op.clone()).or_default() += 1;
    }
    counts
}

fn ops_text(calls: &[Call]) -> String {
    op_counts(calls)
        .into_iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// us-east-1 list prices in USD (see infra/README.md for the date).
mod price {
    pub const LAMBDA_REQUEST: f64 = 0.20e-6;
    pub const LAMBDA_GB_SECOND_ARM64: f64 = 0.000_013_333_4;
    pub const RRU: f64 = 0.125e-6;
    pub const WRU: f64 = 0.625e-6;
    pub const WS_MESSAGE: f64 = 1.00e-6;
    pub const HTTP_REQUEST: f64 = 1.00e-6;
}

/// A function's configured memory in GB, from the template.
fn memory_gb(binary: &str) -> f64 {
    let default = infra::template()["Globals"]["Function"]["MemorySize"]
        .as_f64()
        .expect("MemorySize");
    let own = infra::resource(&infra::function(binary).logical)["Properties"]["MemorySize"]
        .as_f64()
        .unwrap_or(default);
    own / 1024.0
}

/// An estimate of a function's billed milliseconds in AWS (not measured
/// here: moto is no model of DynamoDB's latency): 5 ms of runtime and JSON,
/// 6 ms per DynamoDB round trip, 8 ms per round of up to 64 posts, and for
/// the two hashing functions 110 ms of Argon2id at 1024 MB (0.58 vCPU).
fn estimated_ms(binary: &str, dynamo_calls: usize, posts: u64) -> f64 {
    let hash = if matches!(binary, "http_login" | "http_signup") {
        110.0
    } else {
        0.0
    };
    let post_rounds = posts.div_ceil(64) as f64;
    5.0 + 6.0 * dynamo_calls as f64 + 8.0 * post_rounds + hash
}

/// One row of the printed table.
struct Row {
    event: String,
    binary: &'static str,
    usage: Usage,
    http_requests: u64,
    messages_in: u64,
    /// Invocations the test made itself (the sweep, as EventBridge would).
    direct: u64,
}

impl Row {
    fn new(event: impl Into<String>, binary: &'static str, usage: Usage) -> Self {
        Self {
            event: event.into(),
            binary,
            usage,
            http_requests: 0,
            messages_in: 0,
            direct: 0,
        }
    }

    fn invocations(&self) -> u64 {
        let g = &self.usage.gateway;
        g.ws_connect + g.ws_disconnect + g.ws_default + g.http + g.sweep + self.direct
    }

    /// USD per million such events: Lambda requests and estimated
    /// GB-seconds (each function with its configured memory), DynamoDB
    /// request units, WebSocket messages both ways, HTTP API requests.
    fn cost_per_million(&self, tables: &Tables) -> f64 {
        let (rru, wru) = request_units(&self.usage.calls, tables);
        let g = &self.usage.gateway;
        // Each function's calls (a log out's consequent $disconnect is
        // billed with its own memory and calls); management calls are the
        // event's own function's.
        let mut lambda = 0.0;
        let mut by_function: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
        for c in &self.usage.calls {
            let f = match c.function {
                Some("http") | None => self.binary,
                Some(f) => f,
            };
            by_function.entry(f).or_default().0 += 1;
        }
        by_function.entry(self.binary).or_default().1 =
            g.posts + g.posts_gone + g.deletes + g.deletes_gone;
        let mut counted = 0;
        for (f, (dynamo_calls, posts)) in &by_function {
            let ms = estimated_ms(f, *dynamo_calls, *posts);
            lambda +=
                price::LAMBDA_REQUEST + memory_gb(f) * ms / 1000.0 * price::LAMBDA_GB_SECOND_ARM64;
            counted += 1;
        }
        // Invocations that made no DynamoDB call at all.
        let idle = self.invocations().saturating_sub(counted);
        lambda += idle as f64
            * (price::LAMBDA_REQUEST
                + memory_gb(self.binary) * estimated_ms(self.binary, 0, 0) / 1000.0
                    * price::LAMBDA_GB_SECOND_ARM64);
        let messages = (self.messages_in + g.posts) as f64;
        1e6 * (lambda
            + rru * price::RRU
            + wru * price::WRU
            + messages * price::WS_MESSAGE
            + self.http_requests as f64 * price::HTTP_REQUEST)
    }
}

fn print_table(title: &str, rows: &[Row], tables: &Tables) {
    let mut out = format!(
        "\n{title}\n| event | function | invocations | DynamoDB calls | RRU | WRU | messages in / out | @connections DELETE | HTTP requests | USD per million events |\n|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let g = &r.usage.gateway;
        let (rru, wru) = request_units(&r.usage.calls, tables);
        let invocations = r.invocations();
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} | {} / {} | {} | {} | {:.2} |\n",
            r.event,
            r.binary,
            invocations,
            ops_text(&r.usage.calls),
            rru,
            wru,
            r.messages_in,
            g.posts,
            g.deletes,
            r.http_requests,
            r.cost_per_million(tables)
        ));
    }
    println!("{out}");
}

/// Checks every call of `usage` against the role of the function that made
/// it (`event_function` for the HTTP function and untagged calls) and the
/// Management API calls against `event_function`'s role.
fn check_permissions(cloud: &Cloud, event_function: &str, usage: &Usage) {
    let eval = Eval::new(&[]);
    let logical = |table: &str| -> &'static str {
        let t = &cloud.tables;
        if table == t.users {
            "UsersTable"
        } else if table == t.sessions {
            "SessionsTable"
        } else if table == t.connections {
            "ConnectionsTable"
        } else {
            panic!("a table the template does not have: {table}")
        }
    };
    for c in &usage.calls {
        let binary = match c.function {
            Some("http") | None => event_function,
            Some(f) => f,
        };
        let statements = eval.statements(&infra::function(binary).role);
        let mut needed: Vec<(String, String)> = Vec::new();
        if c.op == "TransactWriteItems" {
            for (kind, table) in &c.items {
                let action = match kind.as_str() {
                    "ConditionCheck" => "ConditionCheckItem".to_owned(),
                    k => format!("{k}Item"),
                };
                needed.push((
                    format!("dynamodb:{action}"),
                    infra::table_arn(logical(table), None),
                ));
            }
        } else {
            needed.push((
                format!("dynamodb:{}", c.op),
                infra::table_arn(logical(&c.table), c.index.as_deref()),
            ));
        }
        for (action, arn) in needed {
            assert!(
                infra::allows(&statements, &action, &arn),
                "{binary} calls {action} on {arn}, which its role does not allow"
            );
        }
    }
    let statements = eval.statements(&infra::function(event_function).role);
    let g = &usage.gateway;
    for (method, n) in [
        ("POST", g.posts + g.posts_gone),
        ("DELETE", g.deletes + g.deletes_gone),
    ] {
        if n > 0 {
            // The stage the template deploys (the stand-in's is "local").
            let stage = eval.string(&json!({ "Ref": "StageName" }));
            let arn = infra::connection_arn(&stage, method, "L0SM9cOFvHcCIhw=");
            assert!(
                infra::allows(&statements, "execute-api:ManageConnections", &arn),
                "{event_function} makes {method} @connections calls its role does not allow"
            );
        }
    }
}

/// The calls of `usage`, as `(function, op, table role, index)`.
fn shape(cloud: &Cloud, usage: &Usage) -> BTreeMap<String, usize> {
    let role = |table: &str| -> &'static str {
        let t = &cloud.tables;
        if table == t.users {
            "users"
        } else if table == t.sessions {
            "sessions"
        } else if table == t.connections {
            "connections"
        } else {
            "?"
        }
    };
    let mut out = BTreeMap::new();
    for c in &usage.calls {
        let what = if c.op == "TransactWriteItems" {
            let items: Vec<String> = c
                .items
                .iter()
                .map(|(k, t)| format!("{k} {}", role(t)))
                .collect();
            format!("TransactWriteItems [{}]", items.join(", "))
        } else {
            match &c.index {
                Some(i) => format!("{} {} {i}", c.op, role(&c.table)),
                None => format!("{} {}", c.op, role(&c.table)),
            }
        };
        *out.entry(what).or_default() += 1;
    }
    out
}

fn expect(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

/// The calls of a broadcast reaching nobody but taking the group listing:
/// one Query per shard of the `users` group.
const SHARDS: usize = GROUP_SHARDS as usize;

fn no_gateway_calls() -> StatsSnapshot {
    StatsSnapshot::default()
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_costs_one_message_per_watcher_and_a_fixed_group_listing() {
    let Some(cloud) = Cloud::start(GatewayOptions {
        sweep_every: None,
        ..GatewayOptions::default()
    })
    .await
    else {
        return;
    };
    const M: usize = 10;
    let start = cloud.mark();
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
    let m = cloud.mark();
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
            ("GetItem sessions", 2),
            ("GetItem users", 1),
            ("TransactWriteItems [Put connections, Update users]", 1),
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

    // They leave: one event to M pages.
    let m = cloud.mark();
    tab.close().await;
    for w in &mut watchers {
        w.expect_event(&name, false).await;
    }
    let offline = cloud
        .settle(&m, |g| g.ws_disconnect == 1 && g.posts == M as u64)
        .await;
    check_permissions(&cloud, "ws_disconnect", &offline);
    assert_eq!(
        shape(&cloud, &offline),
        expect(&[
            ("GetItem connections", 1),
            ("GetItem users", 1),
            ("TransactWriteItems [Delete connections, Update users]", 1),
            ("Query connections by_group", SHARDS),
        ])
    );
    assert_eq!(offline.gateway.posts, M as u64);
    rows.push(Row::new(
        format!("`$disconnect` announced to {M} watchers"),
        "ws_disconnect",
        offline,
    ));

    // A sign-up is announced too (as offline).
    let late = unique_name("late");
    let v = Visitor::new(&cloud.base);
    let m = cloud.mark();
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
            ("UpdateItem users", 1),
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
    let m = cloud.mark();
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
            ("GetItem users", 1),
            ("TransactWriteItems [Delete connections, Update users]", 1),
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
        &cloud.tables,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_connections_cost_a_removal_when_a_post_or_the_sweep_finds_them() {
    // API Gateway's $disconnect is best effort: here it never comes.
    let Some(cloud) = Cloud::start(GatewayOptions {
        sweep_every: None,
        lose_disconnects: true,
        ..GatewayOptions::default()
    })
    .await
    else {
        return;
    };
    let start = cloud.mark();
    let watcher_token = cloud.account(&unique_name("watcher")).await;
    let mut watcher = cloud.watcher(&watcher_token).await;
    cloud.settle(&start, |g| g.ws_default == 1).await;
    let mut rows = Vec::new();
    // A 410 buries only a connection older than the grace period (a third
    // of the 1.5 s test lease).
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
    drop(tab);
    tokio::time::sleep(grace).await;
    let m = cloud.mark();
    let _tab = cloud.raw(&token).await;
    watcher.expect_event(&newcomer, true).await;
    watcher.expect_event(&dead, false).await;
    // Two 410s: the dead connection, and — for the second event, sent to
    // everyone — the newcomer's own, still in its `$connect` (so not open
    // yet, in AWS as here), which the grace period spares after one look.
    let found_dead = cloud
        .settle(&m, |g| {
            g.ws_connect == 1 && g.posts_gone == 2 && g.posts == 2
        })
        .await;
    check_permissions(&cloud, "ws_connect", &found_dead);
    assert_eq!(
        shape(&cloud, &found_dead),
        expect(&[
            ("GetItem sessions", 2),
            ("GetItem users", 2),
            ("TransactWriteItems [Put connections, Update users]", 1),
            ("Query connections by_group", 2 * SHARDS),
            ("GetItem connections", 2),
            ("TransactWriteItems [Delete connections, Update users]", 1),
        ])
    );
    let users = cloud.ctx.store.list_presence().await.expect("list");
    assert!(
        users
            .iter()
            .any(|u| u.username.as_str() == newcomer && u.is_logged_in),
        "the newcomer stays registered: {users:?}"
    );
    rows.push(Row::new(
        "`$connect` whose broadcast meets a dead connection (410), one watcher",
        "ws_connect",
        found_dead,
    ));

    // The same on a sign-up's announcement.
    let dead2 = unique_name("dead");
    let dead2_token = cloud.account(&dead2).await;
    watcher.expect_event(&dead2, false).await;
    let tab = cloud.raw(&dead2_token).await;
    watcher.expect_event(&dead2, true).await;
    drop(tab);
    tokio::time::sleep(grace).await;
    let late = unique_name("late");
    let m = cloud.mark();
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
        .settle(&m, |g| g.http == 1 && g.posts_gone == 1 && g.posts == 4)
        .await;
    check_permissions(&cloud, "http_signup", &signup);
    assert_eq!(
        shape(&cloud, &signup),
        expect(&[
            ("GetItem users", 2),
            ("UpdateItem users", 1),
            ("Query connections by_group", 2 * SHARDS),
            ("GetItem connections", 1),
            ("TransactWriteItems [Delete connections, Update users]", 1),
        ])
    );
    print_table("Dead connections found by a post", &rows, &cloud.tables);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_costs_a_listing_per_shard_and_a_removal_per_expired_connection() {
    let Some(cloud) = Cloud::start(GatewayOptions {
        sweep_every: None,
        lose_disconnects: true,
        ..GatewayOptions::default()
    })
    .await
    else {
        return;
    };
    let watcher_token = cloud.account(&unique_name("watcher")).await;
    let mut watcher = cloud.raw(&watcher_token).await;
    let mut rows = Vec::new();

    // A connection that went silent (no $disconnect came, no post found it).
    let silent = unique_name("silent");
    let silent_token = cloud.account(&silent).await;
    assert_eq!(
        watcher.next().await,
        json!({ "username": silent, "is_logged_in": false }),
        "the sign-up's announcement"
    );
    let tab = cloud.raw(&silent_token).await;
    assert_eq!(
        watcher.next().await,
        json!({ "username": silent, "is_logged_in": true })
    );
    drop(tab);
    // Its lease (1.5 s in tests) runs out; the watcher's too, so the
    // watcher pings (as pages do) to keep its own.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    watcher.send(r#"{"type":"ping"}"#).await;
    assert_eq!(watcher.next().await["type"], "pong");

    let m = cloud.mark();
    let removed = rollcall::lambda::sweep(
        &cloud.ctx,
        lambda_http::LambdaEvent::new(json!({}), lambda_http::Context::default()),
    )
    .await
    .expect("sweep");
    assert_eq!(removed, json!({ "removed": 1 }));
    assert_eq!(
        watcher.next().await,
        json!({ "username": silent, "is_logged_in": false })
    );
    let sweep = cloud.settle(&m, |g| g.posts == 1).await;
    check_permissions(&cloud, "sweep", &sweep);
    assert_eq!(
        shape(&cloud, &sweep),
        expect(&[
            ("Query connections by_lease", SHARDS),
            ("GetItem connections", 1),
            ("GetItem users", 1),
            ("TransactWriteItems [Delete connections, Update users]", 1),
            ("Query connections by_group", SHARDS),
        ])
    );
    // What is left of the socket is closed: here it is gone already (410).
    assert_eq!(sweep.gateway.deletes + sweep.gateway.deletes_gone, 1);
    rows.push(Row {
        direct: 1,
        ..Row::new(
            "sweep removing one expired connection, one watcher",
            "sweep",
            sweep,
        )
    });

    // What every minute costs when nothing expired.
    let m = cloud.mark();
    let removed = rollcall::handlers::sweep::sweep(&cloud.ctx, Timestamp::from_millis(0))
        .await
        .expect("sweep");
    assert_eq!(removed, 0);
    let idle = cloud.settle(&m, |_| true).await;
    assert_eq!(
        shape(&cloud, &idle),
        expect(&[("Query connections by_lease", SHARDS)])
    );
    assert_eq!(idle.gateway, no_gateway_calls());
    rows.push(Row {
        direct: 1,
        ..Row::new("sweep, nothing expired (every minute)", "sweep", idle)
    });
    print_table("The sweep", &rows, &cloud.tables);
}
