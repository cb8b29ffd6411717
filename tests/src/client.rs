//! Clients that behave like a browser tab: [`Visitor`] (HTTP with cookies
//! and CSRF tokens) and [`Socket`] (the WebSocket, reading presence events).

use std::collections::BTreeMap;
use std::sync::Mutex;
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

/// A reply, read fully.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// `Location`, if any.
    pub location: Option<String>,
    /// Body text.
    pub body: String,
    /// All `Set-Cookie` values.
    pub set_cookies: Vec<String>,
}

/// A browser-like HTTP client: keeps cookies, sends `Origin` on POSTs,
/// never follows redirects (tests look at them).
pub struct Visitor {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    jar: Mutex<BTreeMap<String, String>>,
}

impl Visitor {
    /// A fresh visitor of `base`, with no cookies.
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            http,
            base: base.to_owned(),
            jar: Mutex::new(BTreeMap::new()),
        }
    }

    /// The `Cookie` header this visitor would send.
    pub fn cookie_header(&self) -> String {
        let jar = self.jar.lock().expect("jar");
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// One cookie's value.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().expect("jar").get(name).cloned()
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let req = match self.cookie_header() {
            c if c.is_empty() => req,
            c => req.header(COOKIE, c),
        };
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        {
            let mut jar = self.jar.lock().expect("jar");
            for c in &set_cookies {
                let first = c.split(';').next().unwrap_or("");
                if let Some((k, v)) = first.split_once('=') {
                    if v.is_empty() || c.contains("Max-Age=0") {
                        jar.remove(k);
                    } else {
                        jar.insert(k.to_owned(), v.to_owned());
                    }
                }
            }
        }
        let body = resp.text().await.unwrap_or_default();
        Reply {
            status,
            location,
            body,
            set_cookies,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// `POST path` with a form body and this site's `Origin`.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(ORIGIN, &self.base)
            .body(body);
        self.send(req).await
    }

    /// `POST path` with a JSON body (and optional bearer token).
    pub async fn post_json(&self, path: &str, body: &Value, bearer: Option<&str>) -> Reply {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    /// `GET path` with a bearer token.
    pub async fn get_bearer(&self, path: &str, bearer: &str) -> Reply {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(bearer),
        )
        .await
    }

    /// Loads the form at `path` and submits it with `fields` plus its CSRF token.
    pub async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let page = self.get(path).await;
        assert_eq!(page.status, 200, "GET {path}");
        let token = csrf_token(&page.body);
        let mut all = vec![("csrfmiddlewaretoken", token.as_str())];
        all.extend_from_slice(fields);
        self.post_form(path, &all).await
    }

    /// Signs up through the form; asserts success.
    pub async fn sign_up(&self, name: &str, password: &str) {
        let r = self
            .submit(
                "/sign_up/",
                &[
                    ("username", name),
                    ("password1", password),
                    ("password2", password),
                ],
            )
            .await;
        assert_eq!(
            (r.status, r.location.as_deref()),
            (302, Some("/log_in/")),
            "sign up {name}: {}",
            r.body
        );
    }

    /// Logs in through the form; asserts success.
    pub async fn log_in(&self, name: &str, password: &str) {
        let r = self
            .submit("/log_in/", &[("username", name), ("password", password)])
            .await;
        assert_eq!(
            (r.status, r.location.as_deref()),
            (302, Some("/")),
            "log in {name}: {}",
            r.body
        );
        assert!(self.cookie("sessionid").is_some());
    }

    /// Signs up and logs in.
    pub async fn register(&self, name: &str) {
        self.sign_up(name, crate::PASSWORD).await;
        self.log_in(name, crate::PASSWORD).await;
    }

    /// Logs out through the home page's form.
    pub async fn log_out(&self) -> Reply {
        let home = self.get("/").await;
        assert_eq!(home.status, 200);
        let token = csrf_token(&home.body);
        self.post_form("/log_out/", &[("csrfmiddlewaretoken", &token)])
            .await
    }

    /// Opens `/users/` as this visitor's browser would (cookie + same Origin).
    pub async fn socket(&self) -> Socket {
        let ws = format!("{}/users/", self.base.replacen("http://", "ws://", 1));
        Socket::connect(&ws, Some(&self.cookie_header()), Some(&self.base))
            .await
            .expect("socket opens")
    }
}

/// The first CSRF token in a page.
pub fn csrf_token(html: &str) -> String {
    let marker = "name=\"csrfmiddlewaretoken\" value=\"";
    let start = html.find(marker).expect("page has a CSRF token") + marker.len();
    let end = html[start..].find('"').expect("token ends") + start;
    html[start..end].to_owned()
}

/// The `(name, status)` pairs of the home page's list, unescaped.
pub fn listed_users(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<li data-username=\"") {
        rest = &rest[i + "<li data-username=\"".len()..];
        let attr_end = rest.find('"').expect("attribute ends");
        let attr = unescape(&rest[..attr_end]);
        let text_start = rest.find('>').expect("tag ends") + 1;
        let text_end = rest.find("</li>").expect("li ends");
        let text = unescape(&rest[text_start..text_end]);
        let status = text
            .rsplit_once(": ")
            .map(|(_, s)| s.to_owned())
            .unwrap_or_default();
        assert_eq!(
            text,
            format!("{attr}: {status}"),
            "row text matches its data-username"
        );
        out.push((attr, status));
        rest = &rest[text_end..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

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
    /// The snapshot received on opening: `(name, online)`.
    pub snapshot: Vec<(String, bool)>,
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
        };
        if cloud_ping.is_some() {
            let _ = s
                .commands
                .send(Command::Send(r#"{"type":"snapshot"}"#.into()));
            // Presence events may overtake the reply: skip them.
            loop {
                let m = s.next_json(EVENT_WAIT).await.expect("a snapshot");
                if m["type"] == "snapshot" {
                    s.snapshot = users_of(&m);
                    return Ok(s);
                }
            }
        }
        let first = s.next_json(EVENT_WAIT).await.expect("a snapshot first");
        assert_eq!(
            first["type"], "snapshot",
            "first message is the snapshot: {first}"
        );
        s.snapshot = users_of(&first);
        Ok(s)
    }

    /// The next JSON message within `wait`; `None` on timeout or close.
    pub async fn next_json(&mut self, wait: Duration) -> Option<Value> {
        match tokio::time::timeout(wait, self.incoming.recv()).await {
            Ok(Some(Incoming::Json(v))) => Some(v),
            _ => None,
        }
    }

    /// Waits for the presence event of `name`, skipping other users' events
    /// (and failing on another status of `name` first).
    pub async fn expect_event(&mut self, name: &str, online: bool) {
        let deadline = tokio::time::Instant::now() + EVENT_WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = self
                .next_json(left)
                .await
                .unwrap_or_else(|| panic!("no event {name} → {online} within {EVENT_WAIT:?}"));
            if msg.get("type").is_some() {
                continue;
            }
            assert_eq!(
                msg.as_object().map(|o| o.len()),
                Some(2),
                "exactly two fields: {msg}"
            );
            if msg["username"] == name {
                assert_eq!(msg["is_logged_in"], online, "event for {name}: {msg}");
                return;
            }
        }
    }

    /// Asserts that no presence event about `name` arrives within `wait`.
    pub async fn expect_no_event_for(&mut self, name: &str, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(msg) = self.next_json(left).await else {
                return;
            };
            assert_ne!(msg["username"], name, "unexpected event: {msg}");
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
