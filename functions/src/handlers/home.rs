//! The list: `GET /` (page), `GET /api/users` (JSON) and `GET /healthz`.

use http::header::LINK;
use http::{HeaderValue, StatusCode};

use super::auth;
use super::respond::{self, Request, Response};
use crate::context::AppContext;
use crate::domain::{NamePrefix, Timestamp, UserPresence, Username};
use crate::error::AppError;
use crate::pages::{HomePage, UserRows};
use crate::presence::ListHead;

/// `GET /`: every online user and the first [`FIRST_PAGE`] users by name
/// with their status and last seen, the count, plus the script that keeps
/// it live and loads the rest as one scrolls or searches. Without a
/// session: 302 to `/log_in/?next=/`. The list comes from
/// [`AppContext::presence`] (on the local server: rendered once per change
/// and shared by every page load).
#[tracing::instrument(skip_all)]
pub async fn page(ctx: &AppContext, req: &Request) -> Result<Response, AppError> {
    let Some(me) = auth::from_cookie(ctx, req.headers()).await? else {
        return Ok(respond::redirect("/log_in/?next=/"));
    };
    let rendered_at = Timestamp::now();
    let rows = ctx
        .presence
        .rows(rendered_at, FIRST_PAGE, &render_rows)
        .await?;
    let (secret, new) = auth::csrf_secret(req.headers());
    let csrf = secret.form_token();
    // A WebSocket on another domain (the cloud) is opened with a
    // single-use ticket the page asks `POST /api/ws_ticket` for each time;
    // the same-origin socket sends the HttpOnly cookie by itself. The
    // session token is never in the page.
    let ws_url = ctx.config.ws_url.as_deref().unwrap_or("");
    let page = HomePage {
        me: me.username.as_str(),
        csrf: &csrf,
        rows: &rows,
        since: rendered_at.as_millis(),
        ws_url,
        ping_ms: millis(ctx.config.client_ping_interval),
        refresh_ms: millis(ctx.config.client_refresh),
        request_snapshot: !ws_url.is_empty(),
    };
    let body = askama::Template::render(&page)?;
    let csp = csp_for(ws_url);
    let r = respond::html_with_csp(StatusCode::OK, body, &csp);
    Ok(if new {
        respond::set_cookie(r, &auth::csrf_cookie(ctx, &secret))
    } else {
        r
    })
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Users by name in the page's first render (and in each page it loads
/// after: `templates/rollcall.js` asks `/api/users` for as many): the
/// offline ones among them are listed, the rest load as one scrolls.
pub const FIRST_PAGE: usize = 100;

/// The count and the list's rows: every online user first, then the
/// offline ones among the first [`FIRST_PAGE`] by name (askama escapes
/// every name), and where the next page starts. Each group is in name
/// order (code point order, as the page's script sorts). Rendered once
/// per change (and minute: "last seen … ago") and shared.
fn render_rows(head: &ListHead, now: Timestamp) -> String {
    let mut online: Vec<&UserPresence> = head.online.iter().collect();
    online.sort_by(|a, b| a.username.cmp(&b.username));
    let on: std::collections::BTreeSet<&Username> = online.iter().map(|u| &u.username).collect();
    let mut offline: Vec<&UserPresence> = head
        .first
        .iter()
        .filter(|u| !u.is_logged_in && !on.contains(&u.username))
        .collect();
    offline.sort_by(|a, b| a.username.cmp(&b.username));
    askama::Template::render(&UserRows {
        online,
        offline,
        total: head.total,
        next: head.next.as_deref().unwrap_or(""),
        page_size: FIRST_PAGE,
        now,
    })
    .unwrap_or_default()
}

/// The page's CSP, allowing a WebSocket on another origin when configured.
fn csp_for(ws_url: &str) -> String {
    let origin: String = ws_url
        .split_once("://")
        .map(|(scheme, rest)| {
            let host = rest.split('/').next().unwrap_or("");
            format!("{scheme}://{host}")
        })
        .filter(|o| {
            o.chars()
                .all(|c| c.is_ascii_graphic() && c != ';' && c != '\'')
        })
        .unwrap_or_default();
    if origin.is_empty() {
        respond::CSP.to_owned()
    } else {
        respond::CSP.replace(
            "connect-src 'self'",
            &format!("connect-src 'self' {origin}"),
        )
    }
}

/// Users per `GET /api/users` page unless `limit` says otherwise.
pub const USERS_PAGE: usize = 1000;
/// Largest `limit` of `GET /api/users`.
pub const MAX_USERS_PAGE: usize = 5000;

/// `GET /api/users[?q=PREFIX][&after=NAME][&limit=N]` (bearer token or
/// session cookie): 200 `[{"username", "is_logged_in", "seq"[,
/// "last_seen"]}, …]` by name, only names starting with `q` if given (an
/// empty `q` is none), at most `limit` (default [`USERS_PAGE`], at most
/// [`MAX_USERS_PAGE`]); when more follow, a
/// `Link: </api/users?[q=PREFIX&]after=LAST&limit=N>; rel="next"` header.
/// 401 without a session, 400 for a bad `q`, `after` or `limit`.
pub async fn api_users(ctx: &AppContext, req: &Request) -> Result<Response, AppError> {
    let who = match auth::from_bearer(ctx, req.headers()).await? {
        Some(who) => Some(who),
        None => auth::from_cookie(ctx, req.headers()).await?,
    };
    if who.is_none() {
        return Err(AppError::Unauthorized(
            "Log in first: a bearer token or session cookie is required.",
        ));
    }
    let query = req.uri().query();
    let after = match respond::query_param(query, "after") {
        None => None,
        Some(a) => Some(
            Username::parse(&a)
                .map_err(|_| AppError::BadRequest("after: not a username".into()))?,
        ),
    };
    let prefix = match respond::query_param(query, "q") {
        None => None,
        Some(q) if q.is_empty() => None,
        Some(q) => Some(NamePrefix::parse(&q).map_err(|_| {
            AppError::BadRequest(
                "q: the start of a username (letters, digits and @ . + - _; at most 150)".into(),
            )
        })?),
    };
    let limit = match respond::query_param(query, "limit") {
        None => USERS_PAGE,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_USERS_PAGE).contains(n))
            .ok_or_else(|| {
                AppError::BadRequest(format!("limit: a whole number from 1 to {MAX_USERS_PAGE}"))
            })?,
    };
    let page = ctx
        .presence
        .users_page(after.as_ref(), prefix.as_ref(), limit)
        .await?;
    let mut r = respond::json(StatusCode::OK, &page.items);
    if let Some(last) = page.next {
        let mut next = form_urlencoded::Serializer::new(String::new());
        if let Some(p) = &prefix {
            next.append_pair("q", p.as_str());
        }
        let next = next
            .append_pair("after", &last)
            .append_pair("limit", &limit.to_string())
            .finish();
        if let Ok(v) = HeaderValue::from_str(&format!("</api/users?{next}>; rel=\"next\"")) {
            r.headers_mut().insert(LINK, v);
        }
    }
    Ok(r)
}

/// `GET /healthz`: liveness — 200 `{"status":"ok"}` whenever the process
/// answers at all. It reads nothing: a store outage must not get a
/// healthy process restarted (it recovers by itself when the store is
/// back). Readiness (store reachable, events flowing) is the local
/// server's `/readyz`.
pub async fn healthz(_ctx: &AppContext) -> Result<Response, AppError> {
    Ok(respond::json(
        StatusCode::OK,
        &serde_json::json!({ "status": "ok" }),
    ))
}

#[cfg(test)]
mod tests {
    use super::csp_for;

    #[test]
    fn a_remote_websocket_origin_is_added_to_connect_src() {
        assert!(csp_for("").contains("connect-src 'self';"));
        let csp = csp_for("wss://abc.execute-api.eu-west-1.amazonaws.com/prod");
        assert!(csp.contains("connect-src 'self' wss://abc.execute-api.eu-west-1.amazonaws.com;"));
    }
}
