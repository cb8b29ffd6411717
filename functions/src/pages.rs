//! The HTML pages (askama templates in the repository's `templates/`).
//! askama escapes every value for HTML, names included.

use askama::Template;

use crate::domain::{Timestamp, UserPresence};

/// Error messages of the sign-up form, per field.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SignUpErrors {
    /// Errors not tied to a field.
    pub all: Vec<String>,
    /// Username errors.
    pub username: Vec<String>,
    /// Password errors.
    pub password1: Vec<String>,
    /// Confirmation errors.
    pub password2: Vec<String>,
}

impl SignUpErrors {
    /// Whether there is nothing to show.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
            && self.username.is_empty()
            && self.password1.is_empty()
            && self.password2.is_empty()
    }
}

/// `GET/POST /sign_up/`.
#[derive(Template)]
#[template(path = "sign_up.html")]
pub struct SignUpPage<'a> {
    /// Masked CSRF token for the form.
    pub csrf: &'a str,
    /// The name typed so far (re-shown after an error).
    pub username: &'a str,
    /// Errors to show next to their fields.
    pub form_errors: &'a SignUpErrors,
}

/// `GET/POST /log_in/`.
#[derive(Template)]
#[template(path = "log_in.html")]
pub struct LogInPage<'a> {
    /// Masked CSRF token for the form.
    pub csrf: &'a str,
    /// The name typed so far.
    pub username: &'a str,
    /// Where to go after logging in (already checked to be same-site).
    pub next: &'a str,
    /// The error, if the last attempt failed.
    pub error: Option<&'a str>,
}

/// `GET /`: the live list.
#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage<'a> {
    /// The logged-in user's name.
    pub me: &'a str,
    /// Masked CSRF token for the log-out form.
    pub csrf: &'a str,
    /// The count and the two lists ([`UserRows`], rendered once per change).
    pub rows: &'a str,
    /// When the list was read (ms since the epoch): the page asks for the
    /// users who joined after it when its socket (re)opens.
    pub since: u64,
    /// WebSocket URL; empty means this host's `/users/`. When set (another
    /// origin: the cloud), the page opens each socket with a ticket from
    /// `POST /api/ws_ticket`.
    pub ws_url: &'a str,
    /// Client ping period in milliseconds.
    pub ping_ms: u64,
    /// How often the page replaces its socket, in milliseconds.
    pub refresh_ms: u64,
    /// Whether the page must ask for a snapshot after connecting (API
    /// Gateway cannot push during `$connect`).
    pub request_snapshot: bool,
}

/// The list on `GET /`: the count ("N online · M users"), then the online
/// users and the offline ones, each group by name, in two lists. One row
/// per user, exactly the tutorial's
/// `<li data-username="NAME" data-seq="N">NAME: Online</li>` (or `Offline`):
/// the status marker is the stylesheet's, from the row's list. An offline
/// user seen before also has `data-last-seen` (ms), `data-ago` ("last seen
/// 5 min ago", shown by the stylesheet after the text, so the text stays
/// the tutorial's) and the exact time in `title`.
#[derive(Template)]
#[template(path = "user_rows.html")]
pub struct UserRows<'a> {
    /// The online users, by name.
    pub online: Vec<&'a UserPresence>,
    /// The offline users among the first page by name, by name.
    pub offline: Vec<&'a UserPresence>,
    /// Registered users (the count's M).
    pub total: u64,
    /// The last name of the first page when more follow (the script loads
    /// from there), else empty.
    pub next: &'a str,
    /// Users per page the script asks for.
    pub page_size: usize,
    /// What "last seen … ago" is counted from.
    pub now: Timestamp,
}

/// The page's script, served at `/static/rollcall.js`.
pub const SCRIPT: &str = include_str!("../../templates/rollcall.js");
/// The stylesheet, served at `/static/rollcall.css`.
pub const STYLESHEET: &str = include_str!("../../templates/rollcall.css");
