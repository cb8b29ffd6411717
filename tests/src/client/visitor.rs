//! [`Visitor`]: a browser-like HTTP client with a cookie jar, the site's
//! `Origin` on forms and CSRF tokens read off its pages; and its [`Reply`].

use std::collections::BTreeMap;
use std::sync::Mutex;

use http::header::{COOKIE, ORIGIN};
use serde_json::Value;

use super::page::csrf_token;
use super::socket::Socket;

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
    /// `Retry-After`, if any.
    pub retry_after: Option<String>,
    /// `Link`, if any.
    pub link: Option<String>,
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
        let retry_after = resp
            .headers()
            .get("retry-after")
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
        let link = resp
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.text().await.unwrap_or_default();
        Reply {
            status,
            location,
            body,
            set_cookies,
            retry_after,
            link,
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

    /// A socket ticket, as the cloud page gets one: `POST /api/ws_ticket`
    /// with the session cookie, the JSON content type and this site's
    /// `Origin`. `Err(status)` if refused.
    pub async fn ws_ticket(&self) -> Result<String, u16> {
        let req = self
            .http
            .post(format!("{}/api/ws_ticket", self.base))
            .header("content-type", "application/json")
            .header(ORIGIN, &self.base)
            .body("{}");
        let r = self.send(req).await;
        if r.status != 200 {
            return Err(r.status);
        }
        let body: Value = serde_json::from_str(&r.body).expect("JSON");
        assert_eq!(body["expires_in"], 30, "{body}");
        Ok(body["ticket"].as_str().expect("a ticket").to_owned())
    }

    /// The session token (the session cookie's value), as a program using
    /// the JSON API holds it.
    pub fn session_token(&self) -> String {
        self.cookie("sessionid").expect("logged in")
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
        self.try_socket().await.expect("socket opens")
    }

    /// Opens `/users/` as [`Visitor::socket`] does; a refused upgrade gives
    /// its status.
    pub async fn try_socket(&self) -> Result<Socket, u16> {
        Socket::connect(
            &self.ws_url(),
            Some(&self.cookie_header()),
            Some(&self.base),
        )
        .await
    }

    /// Tries to open `/users/` and expects a refusal: its status and
    /// `Retry-After`.
    pub async fn socket_refusal(&self) -> (u16, Option<String>) {
        super::socket::refusal(
            &self.ws_url(),
            Some(&self.cookie_header()),
            Some(&self.base),
        )
        .await
        .expect("the upgrade is refused")
    }

    fn ws_url(&self) -> String {
        format!("{}/users/", self.base.replacen("http://", "ws://", 1))
    }
}
