//! One handler per route, over neutral `http` types, shared by the Lambda
//! functions and the axum server.
//!
//! * [`route`] — the single routing table of the HTTP side (pages, JSON API,
//!   health, static assets); both front ends dispatch through it.
//! * [`signup`], [`login`], [`logout`], [`home`] — the pages and the JSON API.
//! * [`ticket`] — `POST /api/ws_ticket`: single-use socket tickets for the
//!   cloud page.
//! * [`ws`] — WebSocket authorize/connect/disconnect/default (`$connect`,
//!   `$disconnect`, `$default` in API Gateway terms).
//! * [`sweep`] — removes connections whose lease ran out, settles grace
//!   periods.
//! * [`fanout`] — the cloud's fan-out functions: stream batch → push
//!   queue → posts, and the grace period's settle queue.
//! * [`respond`] — request/response types and builders.
//! * [`limit`] — rate-limit keys and checks for handlers.
//! * [`auth`] — sessions from cookies, bearer tokens and query tokens; CSRF.

use http::Method;

use crate::context::AppContext;
use crate::error::AppError;
use respond::{Format, Request, Response};

pub mod auth;
pub mod fanout;
pub mod home;
pub mod limit;
pub mod login;
pub mod logout;
pub mod respond;
pub mod signup;
pub mod sweep;
pub mod ticket;
pub mod ws;

/// Dispatches an HTTP request to its handler and turns any error into its
/// response. Unknown paths are 404; known paths with other methods, 405.
#[tracing::instrument(skip_all, fields(method = %req.method(), path = %req.uri().path()))]
pub async fn route(ctx: &AppContext, req: Request) -> Response {
    let format = if req.uri().path().starts_with("/api/") {
        Format::Json
    } else {
        Format::Html
    };
    dispatch(ctx, &req)
        .await
        .unwrap_or_else(|e| e.into_response(format))
}

async fn dispatch(ctx: &AppContext, req: &Request) -> Result<Response, AppError> {
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let post = *req.method() == Method::POST;
    match req.uri().path() {
        "/" if get => home::page(ctx, req).await,
        "/sign_up/" if get => signup::page(ctx, req).await,
        "/sign_up/" if post => signup::submit(ctx, req).await,
        "/log_in/" if get => login::page(ctx, req).await,
        "/log_in/" if post => login::submit(ctx, req).await,
        "/log_out/" if post => logout::submit(ctx, req).await,
        "/api/sign_up" if post => signup::api(ctx, req).await,
        "/api/log_in" if post => login::api(ctx, req).await,
        "/api/log_out" if post => logout::api(ctx, req).await,
        "/api/users" if get => home::api_users(ctx, req).await,
        "/api/ws_ticket" if post => ticket::api(ctx, req).await,
        "/healthz" if get => home::healthz(ctx).await,
        "/static/rollcall.js" if get => Ok(respond::asset(
            "text/javascript; charset=utf-8",
            crate::pages::SCRIPT,
        )),
        "/static/rollcall.css" if get => Ok(respond::asset(
            "text/css; charset=utf-8",
            crate::pages::STYLESHEET,
        )),
        "/" | "/sign_up/" | "/log_in/" | "/log_out/" | "/api/sign_up" | "/api/log_in"
        | "/api/log_out" | "/api/users" | "/api/ws_ticket" | "/healthz" => {
            Err(AppError::MethodNotAllowed)
        }
        // Django's APPEND_SLASH: `/log_in` → `/log_in/`.
        "/sign_up" | "/log_in" if get => {
            let mut to = format!("{}/", req.uri().path());
            if let Some(q) = req.uri().query() {
                to.push('?');
                to.push_str(q);
            }
            Ok(respond::redirect(&to))
        }
        _ => Err(AppError::NotFound),
    }
}
