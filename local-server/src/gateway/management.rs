//! The `@connections` management API the SDK pusher calls: `POST` (send),
//! `GET` (describe), `DELETE` (close); `410 GoneException` for ids that are
//! not open.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use rollcall::domain::Timestamp;

use super::{Gateway, Out};

fn gone() -> Response {
    let mut r = (StatusCode::GONE, r#"{"message":"Gone"}"#).into_response();
    r.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_static("GoneException"),
    );
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub(super) async fn manage_unstaged(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    manage_one(gw, id, req).await
}

pub(super) async fn manage(
    State(gw): State<Arc<Gateway>>,
    Path((_stage, id)): Path<(String, String)>,
    req: Request,
) -> Response {
    manage_one(gw, id, req).await
}

/// The management API (`@connections`), as the SDK pusher calls it.
async fn manage_one(gw: Arc<Gateway>, id: String, req: Request) -> Response {
    let method = req.method().clone();
    let Ok(body) = axum::body::to_bytes(req.into_body(), 128 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    if method == http::Method::GET {
        gw.stats.count(|c| &c.gets, 1);
    }
    let conns = gw.conns();
    let Some(conn) = conns.get(&id) else {
        match method {
            http::Method::POST => gw.stats.count(|c| &c.posts_gone, 1),
            http::Method::DELETE => gw.stats.count(|c| &c.deletes_gone, 1),
            _ => {}
        }
        return gone();
    };
    match method {
        http::Method::POST => {
            let text = String::from_utf8_lossy(&body).into_owned();
            let bytes = u64::try_from(text.len()).unwrap_or(u64::MAX);
            if conn.tx.send(Out::Text(text)).is_err() {
                gw.stats.count(|c| &c.posts_gone, 1);
                return gone();
            }
            gw.stats.count(|c| &c.posts, 1);
            gw.stats.count(|c| &c.post_bytes, bytes);
            StatusCode::OK.into_response()
        }
        http::Method::DELETE => {
            let _ = conn.tx.send(Out::Close);
            gw.stats.count(|c| &c.deletes, 1);
            StatusCode::NO_CONTENT.into_response()
        }
        http::Method::GET => {
            let at =
                Timestamp::from_millis(u64::try_from(conn.connected_at).unwrap_or(0)).to_rfc3339();
            let body = serde_json::json!({
                "connectedAt": at,
                "identity": { "sourceIp": conn.source_ip, "userAgent": "" },
                "lastActiveAt": at,
            });
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}
