//! The list: `GET /` (page), `GET /api/users` (JSON) and `GET /healthz`.

use http::StatusCode;

use super::auth;
use super::respond::{self, Request, Response};
use crate::context::AppContext;
use crate::error::AppError;
use crate::pages::HomePage;

/// `GET /`: every user with their status, plus the script that keeps it
/// live. Without a session: 302 to `/log_in/?next=/`.
#[tracing::instrument(skip_all)]
pub async fn page(ctx: &AppContext, req: &Request) -> Result<Response, AppError> {
    let Some(me) = auth::from_cookie(ctx, req.headers()).await? else {
        return Ok(respond::redirect("/log_in/?next=/"));
    };
    let users = ctx.store.list_presence().await?;
    let (secret, new) = auth::csrf_secret(req.headers());
    let csrf = secret.form_token();
    let ws_url = ctx.config.ws_url.as_deref().unwrap_or("");
    // Only a WebSocket on another domain needs the token in the page; the
    // same-origin socket sends the HttpOnly cookie by itself.
    let ws_token = if ws_url.is_empty() {
        ""
    } else {
        me.token.expose()
    };
    let page = HomePage {
        me: me.username.as_str(),
        csrf: &csrf,
        users: &users,
        ws_url,
        ws_token,
        ping_ms: u64::try_from(ctx.config.client_ping_interval.as_millis()).unwrap_or(u64::MAX),
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

/// `GET /api/users` (bearer token or session cookie): 200
/// `[{"username", "is_logged_in"}, …]`, or 401.
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
    Ok(respond::json(
        StatusCode::OK,
        &ctx.store.list_presence().await?,
    ))
}

/// `GET /healthz`: 200 `{"status":"ok"}` if the store answers, else 503.
pub async fn healthz(ctx: &AppContext) -> Result<Response, AppError> {
    match ctx.store.ping().await {
        Ok(()) => Ok(respond::json(
            StatusCode::OK,
            &serde_json::json!({ "status": "ok" }),
        )),
        Err(e) => {
            tracing::warn!(error = %e, "health check: store unavailable");
            Err(AppError::Unavailable)
        }
    }
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
