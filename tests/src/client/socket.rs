//! [`Socket`]: an open `/users/` WebSocket, read by a task of its own that
//! answers pings as a browser does, with waits for presence events; and
//! [`users_of`] a snapshot message.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::HeaderValue;
use http::header::{COOKIE, ORIGIN};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the socket's reader saw.
enum Incoming {
    Json(Value),
    Closed(Option<u16>),
}

enum Command {
    Send(String),
    Close,
    Freeze,
}

/// An open `/users/` socket, read continuously by a task of its own (which
/// also answers the server's pings, as a browser does).
pub struct Socket {
    incoming: mpsc::UnboundedReceiver<Incoming>,
    commands: mpsc::UnboundedSender<Command>,
    /// The snapshot received on opening: `(name, online)` of every user it
    /// lists (the online ones; everyone else is offline).
    pub snapshot: Vec<(String, bool)>,
    /// The last part of that snapshot, as sent.
    last_part: Option<Value>,
    /// The newest transition number seen per user, as the page keeps it:
    /// an event at or below it changes nothing and is not news.
    seen: std::collections::HashMap<String, u64>,
}

/// How long to wait for an expected event.
pub const EVENT_WAIT: Duration = Duration::from_secs(10);

impl Socket {
    /// Opens a socket with optional cookie and Origin headers, and reads the
    /// snapshot the server sends first. A refused upgrade returns its status.
    pub async fn connect(
        url: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Self, u16> {
        Self::open(url, cookie, origin, None).await
    }

    /// Opens a socket the way the page does against API Gateway (which cannot
    /// push during `$connect`): asks for the snapshot, then pings every
    /// `ping` to keep its lease, as the page does.
    pub async fn connect_cloud(
        url: &str,
        origin: Option<&str>,
        ping: Duration,
    ) -> Result<Self, u16> {
        Self::open(url, None, origin, Some(ping)).await
    }

    async fn open(
        url: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
        cloud_ping: Option<Duration>,
    ) -> Result<Self, u16> {
        let mut req = url.into_client_request().expect("ws url");
        if let Some(c) = cookie.filter(|c| !c.is_empty()) {
            req.headers_mut()
                .insert(COOKIE, HeaderValue::from_str(c).expect("cookie"));
        }
        if let Some(o) = origin {
            req.headers_mut()
                .insert(ORIGIN, HeaderValue::from_str(o).expect("origin"));
        }
        let ws = match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => ws,
            Err(tungstenite::Error::Http(resp)) => return Err(resp.status().as_u16()),
            Err(e) => panic!("websocket connect failed: {e}"),
        };
        let (in_tx, incoming) = mpsc::unbounded_channel();
        let (commands, cmd_rx) = mpsc::unbounded_channel();
        tokio::spawn(pump(ws, in_tx, cmd_rx, cloud_ping));
        let mut s = Self {
            incoming,
            commands,
            snapshot: Vec::new(),
            last_part: None,
            seen: std::collections::HashMap::new(),
        };
        if cloud_ping.is_some() {
            let _ = s
                .commands
                .send(Command::Send(r#"{"type":"snapshot"}"#.into()));
            // Presence events may overtake the reply: skip them. A large
            // snapshot comes in parts; the last one says no `more`.
            loop {
                let m = s.next_json(EVENT_WAIT).await.expect("a snapshot");
                if m["type"] == "snapshot" {
                    s.snapshot.extend(users_of(&m));
                    s.news(&m);
                    s.last_part = Some(m.clone());
                    if m["more"] != true {
                        return Ok(s);
                    }
                }
            }
        }
        // The snapshot first, in one part or more.
        loop {
            let part = s.next_json(EVENT_WAIT).await.expect("a snapshot first");
            assert_eq!(
                part["type"], "snapshot",
                "first message is the snapshot: {part}"
            );
            s.snapshot.extend(users_of(&part));
            s.news(&part);
            s.last_part = Some(part.clone());
            if part["more"] != true {
                return Ok(s);
            }
        }
    }

    /// The opening snapshot's last part as the server sent it (its `at`,
    /// `total`, `reset`).
    pub fn raw_snapshot(&self) -> Option<&Value> {
        self.last_part.as_ref()
    }

    /// The newest transition number seen per user so far (the snapshot's
    /// included).
    pub fn seqs(&self) -> std::collections::HashMap<String, u64> {
        self.seen.clone()
    }

    /// The next message within `wait`: `Ok(Some(json))`, `Ok(None)` on
    /// timeout, `Err(code)` once the socket closed (with its close code).
    pub async fn next_or_close(&mut self, wait: Duration) -> Result<Option<Value>, Option<u16>> {
        match tokio::time::timeout(wait, self.incoming.recv()).await {
            Err(_) => Ok(None),
            Ok(Some(Incoming::Json(v))) => Ok(Some(v)),
            Ok(Some(Incoming::Closed(code))) => Err(code),
            Ok(None) => Err(None),
        }
    }

    /// The next JSON message within `wait`; `None` on timeout or close.
    pub async fn next_json(&mut self, wait: Duration) -> Option<Value> {
        match tokio::time::timeout(wait, self.incoming.recv()).await {
            Ok(Some(Incoming::Json(v))) => Some(v),
            _ => None,
        }
    }

    /// Waits for the presence event of `name`, skipping other users' events
    /// and those the page would ignore (at or below the newest transition
    /// seen for that user, e.g. a sign-up announcement that arrives late on
    /// the cloud path), and failing on another status of `name` first;
    /// returns its transition number.
    pub async fn expect_event(&mut self, name: &str, online: bool) -> u64 {
        let deadline = tokio::time::Instant::now() + EVENT_WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = self
                .next_json(left)
                .await
                .unwrap_or_else(|| panic!("no event {name} → {online} within {EVENT_WAIT:?}"));
            let Some(seq) = self.news(&msg) else {
                continue;
            };
            if msg["username"] == name {
                if online && seq == 0 {
                    continue; // a sign-up announcement: never the online event
                }
                assert_eq!(msg["is_logged_in"], online, "event for {name}: {msg}");
                return seq;
            }
        }
    }

    /// The transition number of a presence event that is news (newer than
    /// any seen for its user), noting it; `None` for anything else.
    fn news(&mut self, msg: &Value) -> Option<u64> {
        if msg.get("type").is_some() {
            if msg["type"] == "snapshot" {
                for u in msg["users"].as_array().into_iter().flatten() {
                    if let (Some(n), Some(seq)) = (u["username"].as_str(), u["seq"].as_u64()) {
                        self.seen.insert(n.to_owned(), seq);
                    }
                }
            }
            return None;
        }
        let seq = msg["seq"]
            .as_u64()
            .unwrap_or_else(|| panic!("a transition number: {msg}"));
        // An offline transition (not a sign-up's seq 0) also says when.
        let offline = msg["is_logged_in"] == false && seq > 0;
        assert_eq!(
            msg.as_object().map(|o| o.len()),
            Some(if offline { 4 } else { 3 }),
            "the tutorial's two fields and the transition number, and on an \
             offline transition its time: {msg}"
        );
        if offline {
            assert!(msg["last_seen"].is_u64(), "last_seen in ms: {msg}");
        }
        let name = msg["username"].as_str().expect("a name").to_owned();
        match self.seen.get(&name) {
            Some(known) if seq <= *known => None,
            _ => {
                self.seen.insert(name, seq);
                Some(seq)
            }
        }
    }

    /// Asserts that no presence event about `name` that is news arrives
    /// within `wait`.
    pub async fn expect_no_event_for(&mut self, name: &str, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(msg) = self.next_json(left).await else {
                return;
            };
            if self.news(&msg).is_some() {
                assert_ne!(msg["username"], name, "unexpected event: {msg}");
            }
        }
    }

    /// Waits until the server closes this socket; returns the close code.
    pub async fn expect_closed(&mut self, wait: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Err(_) => panic!("socket still open after {wait:?}"),
                Ok(None) => return None,
                Ok(Some(Incoming::Closed(code))) => return code,
                Ok(Some(Incoming::Json(_))) => {}
            }
        }
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        let _ = self.commands.send(Command::Send(text.to_owned()));
    }

    /// Closes politely and waits for the server's answering close.
    pub async fn close(mut self) {
        let _ = self.commands.send(Command::Close);
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(m) = self.incoming.recv().await {
                if matches!(m, Incoming::Closed(_)) {
                    return;
                }
            }
        })
        .await;
    }

    /// Drops the TCP connection without a close frame (a crashed tab).
    pub fn kill(self) {
        drop(self);
    }

    /// Stops reading and answering pings while keeping the TCP connection
    /// open (a frozen machine, a dead network path) until this is dropped.
    pub fn freeze(&mut self) {
        let _ = self.commands.send(Command::Freeze);
    }
}

/// Reads the socket until it ends, answering pings (tungstenite does that
/// while reading), and carries out commands.
async fn pump(
    mut ws: Ws,
    out: mpsc::UnboundedSender<Incoming>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    ping: Option<Duration>,
) {
    let mut ticker = tokio::time::interval(ping.unwrap_or(Duration::from_secs(3600)));
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick(), if ping.is_some() => {
                let _ = ws.send(Message::text(r#"{"type":"ping"}"#)).await;
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let v = serde_json::from_str(t.as_str()).expect("the server sends JSON");
                    let _ = out.send(Incoming::Json(v));
                }
                Some(Ok(Message::Close(frame))) => {
                    let _ = out.send(Incoming::Closed(frame.map(|f| u16::from(f.code))));
                    // Let tungstenite answer the close handshake.
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.next()).await;
                    return;
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => {
                    let _ = out.send(Incoming::Closed(None));
                    return;
                }
            },
            cmd = commands.recv() => match cmd {
                Some(Command::Send(text)) => {
                    let _ = ws.send(Message::text(text)).await;
                }
                Some(Command::Close) => {
                    let _ = ws.close(None).await;
                }
                Some(Command::Freeze) => {
                    // Hold the connection, read nothing, until the owner lets go.
                    while commands.recv().await.is_some() {}
                    return;
                }
                // The owner dropped the socket: drop the TCP connection as is.
                None => return,
            },
        }
    }
}

/// Tries to upgrade `url` as [`Socket::connect`] does; `None` if it opened
/// (it is closed again at once), else the status and `Retry-After` of the
/// refusal.
pub async fn refusal(
    url: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Option<(u16, Option<String>)> {
    let mut req = url.into_client_request().expect("ws url");
    if let Some(c) = cookie.filter(|c| !c.is_empty()) {
        req.headers_mut()
            .insert(COOKIE, HeaderValue::from_str(c).expect("cookie"));
    }
    if let Some(o) = origin {
        req.headers_mut()
            .insert(ORIGIN, HeaderValue::from_str(o).expect("origin"));
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((mut ws, _)) => {
            let _ = ws.close(None).await;
            None
        }
        Err(tungstenite::Error::Http(resp)) => Some((
            resp.status().as_u16(),
            resp.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        )),
        Err(e) => panic!("websocket connect failed: {e}"),
    }
}

/// `(name, online)` pairs of a snapshot message.
pub fn users_of(snapshot: &Value) -> Vec<(String, bool)> {
    snapshot["users"]
        .as_array()
        .expect("users array")
        .iter()
        .map(|u| {
            (
                u["username"].as_str().expect("name").to_owned(),
                u["is_logged_in"].as_bool().expect("bool"),
            )
        })
        .collect()
}
