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
use rollcall_tests::gateway::{TestGateway, spawn_gateway};
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

/// The Lambda functions behind the stand-in, on fresh moto tables, counted.
pub(super) struct Cloud {
    /// `http://127.0.0.1:PORT` of the HTTP API.
    pub(super) base: String,
    ws_url: String,
    /// The functions' context.
    pub(super) ctx: rollcall::AppContext,
    stats: GatewayStats,
    calls: Recorder,
    /// The fresh tables in moto.
    pub(super) tables: Tables,
    /// The presence table's stream, for its index writes.
    pub(super) presence: PresenceStream,
    _gateway: TestGateway,
}

/// A reading of every counter, to measure what happens after it.
pub(super) struct Mark {
    calls: usize,
    gateway: StatsSnapshot,
    presence: Seen,
}

/// What one event cost.
#[derive(Debug, Clone)]
pub(super) struct Usage {
    /// The DynamoDB requests.
    pub(super) calls: Vec<Call>,
    /// The presence items it changed, before and after.
    pub(super) changes: Vec<Change>,
    /// The stand-in's counters.
    pub(super) gateway: StatsSnapshot,
}

impl Cloud {
    /// The functions with the tests' fast timings except `deployed`, the
    /// variables taken from the template's environment as AWS runs it
    /// ([`GRACE`], [`LEASE`]). `None` (after moto said `SKIPPED`) without
    /// moto.
    pub(super) async fn start(opts: GatewayOptions, deployed: &[&str]) -> Option<Self> {
        let calls = Recorder::default();
        let base = rollcall_tests::moto::client()?;
        let streams = rollcall_tests::moto::streams_client()?;
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
        let presence = PresenceStream::new(store.client(), streams, &tables.presence).await;
        let env = Eval::new(&[]).environment(&infra::function("ws_connect").logical);
        let extra: Vec<(&str, &str)> = deployed
            .iter()
            .map(|v| {
                (
                    *v,
                    env.get(*v).map(String::as_str).expect("in the template"),
                )
            })
            .collect();
        // The tests' fast timings otherwise: leases of 1.5 s, which matters
        // only to the sweep and 410 scenarios (no sweep runs unless asked for).
        let gw = spawn_gateway(Arc::new(store), opts, &extra).await;
        Some(Self {
            base: gw.base.clone(),
            ws_url: gw.ws_url.clone(),
            ctx: gw.ctx.clone(),
            stats: gw.stats.clone(),
            calls,
            tables,
            presence,
            _gateway: gw,
        })
    }

    /// Reads every counter.
    pub(super) async fn mark(&self) -> Mark {
        Mark {
            calls: self.calls.len(),
            gateway: self.stats.snapshot(),
            presence: self.presence.mark().await,
        }
    }

    /// The calls and gateway counters since `since` (no presence changes).
    fn usage(&self, since: &Mark) -> Usage {
        Usage {
            calls: self.calls.since(since.calls),
            changes: Vec::new(),
            gateway: self.stats.snapshot().since(&since.gateway),
        }
    }

    /// Waits until the counters since `since` satisfy `done`, then gives
    /// the usage (invocations count once the function returned, so every
    /// DynamoDB call they made is in).
    pub(super) async fn settle(
        &self,
        since: &Mark,
        done: impl Fn(&StatsSnapshot) -> bool,
    ) -> Usage {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let u = self.usage(since);
            if done(&u.gateway) {
                // Anything else still in flight would show up here.
                tokio::time::sleep(Duration::from_millis(150)).await;
                let mut again = self.usage(since);
                assert_eq!(
                    again.calls.len(),
                    u.calls.len(),
                    "calls kept coming after the event"
                );
                again.changes = self.presence.since(&since.presence).await;
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
