//! [`Cloud`]: the Lambda functions behind the local API Gateway stand-in,
//! on fresh moto tables, with every DynamoDB request, every change of a
//! presence item (from the table's stream) and gateway counter counted;
//! [`Mark`] and [`Usage`] to measure one event; and the clients the
//! scenarios use (accounts, a [`Raw`] socket, a watching page).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::HeaderValue;
use rollcall::config::Tables;
use rollcall::store::dynamodb::DynamoStore;
use rollcall_local_server::gateway::{GatewayOptions, GatewayStats, StatsSnapshot};
use rollcall_tests::PASSWORD;
use rollcall_tests::client::{Socket, Visitor};
use rollcall_tests::gateway::{TestGateway, spawn_gateway_counted};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::recorder::{Call, Recorder};
use super::stream::{Change, PresenceStream, Seen};
use crate::infra::{self, Eval};

/// The template's offline grace period: a last close starts it, and the
/// sweep announces the offline once it has passed.
pub(super) const GRACE: &str = "ROLLCALL_OFFLINE_GRACE_SECS";
/// The template's connection lease.
pub(super) const LEASE: &str = "ROLLCALL_LEASE_SECS";
/// The template's client ping period (every other ping renews the lease).
pub(super) const PING: &str = "ROLLCALL_CLIENT_PING_SECS";

/// The template's rate limits, which every scenario runs with (they are
/// DynamoDB calls of their own).
const LIMITS: &[&str] = &[
    "ROLLCALL_LOGIN_RATE_PER_ADDR",
    "ROLLCALL_LOGIN_FAILURES_PER_USER",
    "ROLLCALL_SIGNUP_RATE_PER_ADDR",
    "ROLLCALL_SIGNUP_RATE_PER_USER",
    "ROLLCALL_WS_UPGRADES_PER_ADDR",
    "ROLLCALL_WS_UPGRADES_PER_SESSION",
    "ROLLCALL_WS_TICKETS_PER_ADDR",
    "ROLLCALL_WS_TICKETS_PER_SESSION",
    "ROLLCALL_WS_MAX_PER_USER",
    "ROLLCALL_WS_MESSAGE_RATE",
];

/// The Lambda functions behind the stand-in, on fresh moto tables, counted.
pub(super) struct Cloud {
    /// `http://127.0.0.1:PORT` of the HTTP API.
    pub(super) base: String,
    ws_url: String,
    /// The functions' context.
    pub(super) ctx: rollcall::AppContext,
    stats: GatewayStats,
    calls: Recorder,
    sqs_calls: Recorder,
    /// The fresh tables in moto.
    pub(super) tables: Tables,
    /// The presence table's stream, for its index writes.
    pub(super) presence: PresenceStream,
    _gateway: TestGateway,
}

/// How long nothing more may happen after an event is complete: longer
/// than the stand-in's stream poll (200 ms) plus a queue poller's idle wait
/// (100 ms) and the work they hand over.
const QUIET: Duration = Duration::from_millis(700);

/// A reading of every counter, to measure what happens after it.
pub(super) struct Mark {
    calls: usize,
    sqs: usize,
    gateway: StatsSnapshot,
    presence: Seen,
}

/// What one event cost.
#[derive(Debug, Clone)]
pub(super) struct Usage {
    /// The DynamoDB requests.
    pub(super) calls: Vec<Call>,
    /// The SQS requests the functions made (not their mappings' polls).
    pub(super) sqs: Vec<Call>,
    /// The presence items it changed, before and after.
    pub(super) changes: Vec<Change>,
    /// The stand-in's counters.
    pub(super) gateway: StatsSnapshot,
}

/// Invocations of every function, summed.
pub(super) trait Invocations {
    /// Every function invocation the stand-in made.
    fn invocations(&self) -> u64;
}

impl Invocations for StatsSnapshot {
    fn invocations(&self) -> u64 {
        self.ws_connect
            + self.ws_disconnect
            + self.ws_default
            + self.http
            + self.sweep
            + self.fanout
            + self.push
            + self.settle
    }
}

impl Usage {
    /// How many `op` requests `function` made (DynamoDB or SQS).
    pub(super) fn count(&self, function: &str, op: &str) -> usize {
        self.calls
            .iter()
            .chain(&self.sqs)
            .filter(|c| c.function == Some(function) && c.op == op)
            .count()
    }

    /// `function: op` counts, for messages.
    pub(super) fn summary(&self) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        for c in self.calls.iter().chain(&self.sqs) {
            *out.entry(format!("{}: {}", c.function.unwrap_or("-"), c.op))
                .or_default() += 1;
        }
        out
    }
}

impl Cloud {
    /// The functions with the tests' fast timings except `deployed`, the
    /// variables taken from the template's environment as AWS runs it
    /// ([`GRACE`], [`LEASE`], …), and `overrides`. `None` (after moto said
    /// `SKIPPED`) without moto.
    pub(super) async fn start(
        opts: GatewayOptions,
        deployed: &[&str],
        overrides: &[(&str, &str)],
    ) -> Option<Self> {
        Self::seeded(opts, deployed, overrides, 0).await
    }

    /// [`Cloud::start`] with `online` users already online (presence items
    /// written before the stand-in starts, so no event announces them: as
    /// if they had come online long ago).
    pub(super) async fn seeded(
        opts: GatewayOptions,
        deployed: &[&str],
        overrides: &[(&str, &str)],
        online: usize,
    ) -> Option<Self> {
        let calls = Recorder::default();
        let sqs_calls = Recorder::of_functions();
        let base = rollcall_tests::moto::client()?;
        let streams = rollcall_tests::moto::streams_client()?;
        let conf = base
            .config()
            .to_builder()
            .interceptor(calls.clone())
            .build();
        let tables = rollcall_tests::moto::unique_tables();
        // The functions' store, recorded, reading no stream (as in Lambda);
        // the stream mapping's, on the same tables, with clients of its own.
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(conf), tables.clone());
        let stream = rollcall_tests::moto::store_on(tables.clone())?;
        stream
            .create_tables()
            .await
            .expect("create the tables in moto");
        if online > 0 {
            let names: Vec<String> = (0..online).map(|i| format!("online.{i:05}")).collect();
            rollcall_tests::moto::seed_online(&base, &tables.presence, &names).await;
        }
        let presence = PresenceStream::new(stream.client(), streams, &tables.presence).await;
        let sqs = rollcall_tests::moto::sqs_client()?;
        let sqs = aws_sdk_sqs::Client::from_conf(
            sqs.config()
                .to_builder()
                .interceptor(sqs_calls.clone())
                .build(),
        );
        let env = Eval::new(&[]).environment(&infra::function("ws_connect").logical);
        let mut extra: Vec<(&str, &str)> = deployed
            .iter()
            .chain(LIMITS)
            .map(|v| {
                (
                    *v,
                    env.get(*v).map(String::as_str).expect("in the template"),
                )
            })
            .collect();
        extra.extend_from_slice(overrides);
        // The tests' fast timings otherwise: leases of 1.5 s, which matters
        // only to the sweep and 410 scenarios (no sweep runs unless asked for).
        // The template's limiter: counts in the sessions table, recorded.
        let limiter = Arc::new(rollcall::limits::dynamodb::DynamoLimiter::new(
            store.client().clone(),
            tables.sessions.clone(),
        ));
        let gw = spawn_gateway_counted(Arc::new(store), stream, sqs, limiter, opts, &extra).await;
        Some(Self {
            base: gw.base.clone(),
            ws_url: gw.ws_url.clone(),
            ctx: gw.ctx.clone(),
            stats: gw.stats.clone(),
            calls,
            sqs_calls,
            tables,
            presence,
            _gateway: gw,
        })
    }

    /// Reads every counter once nothing has happened for [`QUIET`] (what
    /// an earlier event caused may still be on its way: a shard the fan-out
    /// lists after the watchers got their message).
    pub(super) async fn mark(&self) -> Mark {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let now = || {
            (
                self.calls.len(),
                self.sqs_calls.len(),
                self.stats.snapshot(),
            )
        };
        let mut seen = now();
        loop {
            tokio::time::sleep(QUIET).await;
            let again = now();
            if again == seen {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the cloud never went quiet: {again:?}"
            );
            seen = again;
        }
        self.mark_now().await
    }

    /// Reads every counter now.
    pub(super) async fn mark_now(&self) -> Mark {
        Mark {
            calls: self.calls.len(),
            sqs: self.sqs_calls.len(),
            gateway: self.stats.snapshot(),
            presence: self.presence.mark().await,
        }
    }

    /// The calls and gateway counters since `since` (no presence changes).
    fn usage(&self, since: &Mark) -> Usage {
        Usage {
            calls: self.calls.since(since.calls),
            sqs: self.sqs_calls.since(since.sqs),
            changes: Vec::new(),
            gateway: self.stats.snapshot().since(&since.gateway),
        }
    }

    /// Waits until what happened since `since` satisfies `done`, then
    /// until nothing more has happened for [`QUIET`] (an event's stream
    /// record, queue messages and the invocations they cause all come
    /// after the request that caused them, and an invocation counts once
    /// its function has returned), and gives the usage: anything that
    /// followed is in it, for the scenario's shape to catch.
    pub(super) async fn settle(&self, since: &Mark, done: impl Fn(&Usage) -> bool) -> Usage {
        let mut u = self.wait(since, done).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let size = |u: &Usage| (u.calls.len(), u.sqs.len(), u.gateway);
        loop {
            tokio::time::sleep(QUIET).await;
            let again = self.usage(since);
            if size(&again) == size(&u) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "calls kept coming after the event: {:#?}\n{:?}",
                again.summary(),
                again.gateway
            );
            u = again;
        }
        u.changes = self.presence.since(&since.presence).await;
        u
    }

    /// [`Cloud::wait`], with the presence changes (their index writes)
    /// since `since` read from the stream: for an event measured without
    /// waiting for quiet (a settle message is on its way).
    pub(super) async fn wait_changes(&self, since: &Mark, done: impl Fn(&Usage) -> bool) -> Usage {
        let mut u = self.wait(since, done).await;
        u.changes = self.presence.since(&since.presence).await;
        u
    }

    /// Waits until what happened since `since` satisfies `done` (no
    /// [`QUIET`] check: more may follow).
    pub(super) async fn wait(&self, since: &Mark, done: impl Fn(&Usage) -> bool) -> Usage {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let u = self.usage(since);
            if done(&u) {
                return u;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "event did not complete: {:?}\n{:#?}",
                u.gateway,
                u.summary()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Signs `name` up and logs in through the JSON API; the session token.
    pub(super) async fn account(&self, name: &str) -> String {
        let v = Visitor::new(&self.base);
        let body = json!({ "username": name, "password": PASSWORD });
        assert_eq!(v.post_json("/api/sign_up", &body, None).await.status, 201);
        self.token(name).await
    }

    /// Logs `name` in through the JSON API; the session token.
    pub(super) async fn token(&self, name: &str) -> String {
        let v = Visitor::new(&self.base);
        let body = json!({ "username": name, "password": PASSWORD });
        let r = v.post_json("/api/log_in", &body, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v: Value = serde_json::from_str(&r.body).expect("JSON");
        v["token"].as_str().expect("token").to_owned()
    }

    /// A socket as a program would open it: `?token=`, the page's Origin,
    /// and nothing sent until the test says so.
    pub(super) async fn raw(&self, token: &str) -> Raw {
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

    /// Which of this cloud's tables `table` is: its short name and its
    /// logical id in the template (`("users", "UsersTable")`, …).
    pub(super) fn table_names(&self, table: &str) -> Option<(&'static str, &'static str)> {
        let t = &self.tables;
        if table == t.users {
            Some(("users", "UsersTable"))
        } else if table == t.presence {
            Some(("presence", "PresenceTable"))
        } else if table == t.sessions {
            Some(("sessions", "SessionsTable"))
        } else if table == t.connections {
            Some(("connections", "ConnectionsTable"))
        } else {
            None
        }
    }

    /// A watching page: socket, snapshot, and no ping for the test's length.
    pub(super) async fn watcher(&self, token: &str) -> Socket {
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
pub(super) struct Raw(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Raw {
    /// Sends a text frame.
    pub(super) async fn send(&mut self, text: &str) {
        self.0.send(Message::text(text)).await.expect("send");
    }

    /// The next JSON message.
    pub(super) async fn next(&mut self) -> Value {
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
    pub(super) async fn close(mut self) {
        let _ = self.0.close(None).await;
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout(Duration::from_secs(2), self.0.next()).await
        {}
    }
}
